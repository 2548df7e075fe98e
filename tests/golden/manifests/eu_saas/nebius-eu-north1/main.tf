# planner manifests: site "nebius-eu-north1" ("nebius", "cloud")
# Generated from result.json (plan "9f88a6be33be0a4a5302869b84af1f5793720fe86115ae8f7761ba533f36208d"); re-render with `planner manifests` instead of editing.
# No commitment, reservation or savings-plan resource is emitted: those are purchases a person makes.

locals {
  site                 = "nebius-eu-north1"
  scenario             = "eu-saas"
  scenario_description = "EU SaaS with GDPR residency, two on-prem racks and EU cloud overflow"
  variant              = "base"
  variant_description  = ""
  plan_hash            = "9f88a6be33be0a4a5302869b84af1f5793720fe86115ae8f7761ba533f36208d"
  slot_start_utc       = { "night" = 0, "early" = 4, "morning" = 8, "afternoon" = 12, "evening" = 16, "late" = 20 }
  slot_counts = {
    nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_reserved    = { "night" = 2, "early" = 2, "morning" = 2, "afternoon" = 2, "evening" = 2, "late" = 2 }
    nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_on_demand   = { "night" = 0, "early" = 2, "morning" = 2, "afternoon" = 2, "evening" = 1, "late" = 0 }
    nebius_eu_north1_gpu_h100_sxm_8gpu_128vcpu_1600gb_on_demand = { "night" = 0, "early" = 1, "morning" = 1, "afternoon" = 1, "evening" = 1, "late" = 0 }
    nebius_eu_north1_gpu_h200_sxm_1gpu_16vcpu_200gb_on_demand   = { "night" = 0, "early" = 0, "morning" = 1, "afternoon" = 1, "evening" = 0, "late" = 0 }
    nebius_eu_north1_gpu_l40s_d_4gpu_128vcpu_768gb_on_demand    = { "night" = 0, "early" = 0, "morning" = 0, "afternoon" = 0, "evening" = 0, "late" = 1 }
  }
}

terraform {
  required_version = ">= 1.5"
  required_providers {
    nebius = {
      source = "terraform-provider.storage.eu-north1.nebius.cloud/nebius/nebius"
    }
  }
}

provider "nebius" {}

# group "nebius-eu-north1-gpu-h100-sxm_1gpu-16vcpu-200gb" / "reserved": "fixed size 2"
resource "nebius_mk8s_v1_node_group" "nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_reserved" {
  parent_id        = var.cluster_id
  name             = "nebius-eu-north1-gpu-h100-sxm-1gpu-16vcpu-200gb-reserved"
  fixed_node_count = 2
  labels           = { "planner-feature" = "assistant_indexing", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-reserved-discount-pct" = "20", "planner-reserved-term" = "1y", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-search_acme-support", "planner-tier" = "reserved", "planner-variant" = "base", "planner-workload-doc-embed" = "true", "planner-workload-support-chat" = "true" }

  template = {
    resources = {
      platform = "gpu-h100-sxm"
      preset   = "1gpu-16vcpu-200gb"
    }
    boot_disk = {
      type           = "NETWORK_SSD"
      size_gibibytes = var.boot_disk_gib
    }
    gpu_settings = {
      drivers_preset = var.gpu_drivers_preset
    }
    metadata = {
      labels = { "planner-feature" = "assistant_indexing", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-reserved-discount-pct" = "20", "planner-reserved-term" = "1y", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-search_acme-support", "planner-tier" = "reserved", "planner-variant" = "base", "planner-workload-doc-embed" = "true", "planner-workload-support-chat" = "true" }
    }
  }
}

# group "nebius-eu-north1-gpu-h100-sxm_1gpu-16vcpu-200gb" / "on_demand": "autoscaling 0..2; node groups have no scheduled scaling: per-slot counts in local.slot_counts"
resource "nebius_mk8s_v1_node_group" "nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_on_demand" {
  parent_id = var.cluster_id
  name      = "nebius-eu-north1-gpu-h100-sxm-1gpu-16vcpu-200gb-on-demand"
  autoscaling = {
    min_node_count = 0
    max_node_count = 2
  }
  labels = { "planner-feature" = "assistant", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat" = "true" }

  template = {
    resources = {
      platform = "gpu-h100-sxm"
      preset   = "1gpu-16vcpu-200gb"
    }
    boot_disk = {
      type           = "NETWORK_SSD"
      size_gibibytes = var.boot_disk_gib
    }
    gpu_settings = {
      drivers_preset = var.gpu_drivers_preset
    }
    metadata = {
      labels = { "planner-feature" = "assistant", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat" = "true" }
    }
  }
}

# group "nebius-eu-north1-gpu-h100-sxm_8gpu-128vcpu-1600gb" / "on_demand": "autoscaling 0..1; node groups have no scheduled scaling: per-slot counts in local.slot_counts"
resource "nebius_mk8s_v1_node_group" "nebius_eu_north1_gpu_h100_sxm_8gpu_128vcpu_1600gb_on_demand" {
  parent_id = var.cluster_id
  name      = "nebius-eu-north1-gpu-h100-sxm-8gpu-128vcpu-1600gb-on-demand"
  autoscaling = {
    min_node_count = 0
    max_node_count = 1
  }
  labels = { "planner-feature" = "assistant-escalation", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat-large" = "true" }

  template = {
    resources = {
      platform = "gpu-h100-sxm"
      preset   = "8gpu-128vcpu-1600gb"
    }
    boot_disk = {
      type           = "NETWORK_SSD"
      size_gibibytes = var.boot_disk_gib
    }
    gpu_settings = {
      drivers_preset = var.gpu_drivers_preset
    }
    metadata = {
      labels = { "planner-feature" = "assistant-escalation", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat-large" = "true" }
    }
  }
}

# group "nebius-eu-north1-gpu-h200-sxm_1gpu-16vcpu-200gb" / "on_demand": "autoscaling 0..1; node groups have no scheduled scaling: per-slot counts in local.slot_counts"
resource "nebius_mk8s_v1_node_group" "nebius_eu_north1_gpu_h200_sxm_1gpu_16vcpu_200gb_on_demand" {
  parent_id = var.cluster_id
  name      = "nebius-eu-north1-gpu-h200-sxm-1gpu-16vcpu-200gb-on-demand"
  autoscaling = {
    min_node_count = 0
    max_node_count = 1
  }
  labels = { "planner-feature" = "assistant", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat" = "true" }

  template = {
    resources = {
      platform = "gpu-h200-sxm"
      preset   = "1gpu-16vcpu-200gb"
    }
    boot_disk = {
      type           = "NETWORK_SSD"
      size_gibibytes = var.boot_disk_gib
    }
    gpu_settings = {
      drivers_preset = var.gpu_drivers_preset
    }
    metadata = {
      labels = { "planner-feature" = "assistant", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat" = "true" }
    }
  }
}

# group "nebius-eu-north1-gpu-l40s-d_4gpu-128vcpu-768gb" / "on_demand": "autoscaling 0..1; node groups have no scheduled scaling: per-slot counts in local.slot_counts"
resource "nebius_mk8s_v1_node_group" "nebius_eu_north1_gpu_l40s_d_4gpu_128vcpu_768gb_on_demand" {
  parent_id = var.cluster_id
  name      = "nebius-eu-north1-gpu-l40s-d-4gpu-128vcpu-768gb-on-demand"
  autoscaling = {
    min_node_count = 0
    max_node_count = 1
  }
  labels = { "planner-feature" = "assistant-escalation", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat-large" = "true" }

  template = {
    resources = {
      platform = "gpu-l40s-d"
      preset   = "4gpu-128vcpu-768gb"
    }
    boot_disk = {
      type           = "NETWORK_SSD"
      size_gibibytes = var.boot_disk_gib
    }
    gpu_settings = {
      drivers_preset = var.gpu_drivers_preset
    }
    metadata = {
      labels = { "planner-feature" = "assistant-escalation", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "nebius-eu-north1", "planner-tenant" = "acme-support", "planner-tier" = "on_demand", "planner-variant" = "base", "planner-workload-support-chat-large" = "true" }
    }
  }
}
