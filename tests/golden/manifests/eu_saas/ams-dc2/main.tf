# planner manifests: site "ams-dc2" ("onprem", "onprem")
# Generated from result.json (plan "9f88a6be33be0a4a5302869b84af1f5793720fe86115ae8f7761ba533f36208d"); re-render with `planner manifests` instead of editing.
# No commitment, reservation or savings-plan resource is emitted: those are purchases a person makes.

locals {
  site                 = "ams-dc2"
  scenario             = "eu-saas"
  scenario_description = "EU SaaS with GDPR residency, two on-prem racks and EU cloud overflow"
  variant              = "base"
  variant_description  = ""
  plan_hash            = "9f88a6be33be0a4a5302869b84af1f5793720fe86115ae8f7761ba533f36208d"
  slot_start_utc       = { "night" = 0, "early" = 4, "morning" = 8, "afternoon" = 12, "evening" = 16, "late" = 20 }
  slot_counts = {
    ams_dc2_l40s_owned = { "night" = 8, "early" = 8, "morning" = 8, "afternoon" = 8, "evening" = 8, "late" = 8 }
  }
}

terraform {
  required_version = ">= 1.5"
}

# group "ams-dc2-l40s" / "owned": "fixed size 8"
module "gpu_pool_ams_dc2_l40s_owned" {
  source            = "./modules/gpu_pool"
  name              = "ams-dc2-l40s-owned"
  site              = "ams-dc2"
  site_kind         = "onprem"
  provider_name     = "onprem"
  region            = null
  offer             = "ams-dc2-l40s"
  instance_type     = "L40S server GPU"
  accelerator       = "L40S"
  tier              = "owned"
  fixed             = true
  gpus_per_instance = 1
  gpus_per_server   = 8
  min_count         = 8
  max_count         = 8
  count_per_slot    = { "night" = 8, "early" = 8, "morning" = 8, "afternoon" = 8, "evening" = 8, "late" = 8 }
  slot_start_utc    = local.slot_start_utc
  power_budget_kw   = 25
  workloads         = ["doc-rerank", "support-chat", "support-chat-large"]
  models            = ["bge-reranker-v2-m3", "llama-3-1-70b", "llama-3-1-8b"]
  reserved_term     = null
  reserved_discount = null
  labels            = { "planner-feature" = "assistant_assistant-escalation_semantic-search", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "ams-dc2", "planner-tenant" = "acme-search_acme-support", "planner-tier" = "owned", "planner-variant" = "base", "planner-workload-doc-rerank" = "true", "planner-workload-support-chat" = "true", "planner-workload-support-chat-large" = "true" }
}
