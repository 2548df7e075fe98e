terraform {
  required_version = ">= 1.5"
}

locals {
  servers_per_slot = {
    for slot, n in var.count_per_slot : slot => ceil(n * var.gpus_per_instance / var.gpus_per_server)
  }
  gpus_per_slot = { for slot, n in var.count_per_slot : slot => n * var.gpus_per_instance }
}

resource "terraform_data" "contract" {
  input = {
    name              = var.name
    site              = var.site
    site_kind         = var.site_kind
    provider_name     = var.provider_name
    region            = var.region
    offer             = var.offer
    instance_type     = var.instance_type
    accelerator       = var.accelerator
    tier              = var.tier
    fixed             = var.fixed
    min_count         = var.min_count
    max_count         = var.max_count
    count_per_slot    = var.count_per_slot
    servers_per_slot  = local.servers_per_slot
    gpus_per_slot     = local.gpus_per_slot
    slot_start_utc    = var.slot_start_utc
    power_budget_kw   = var.power_budget_kw
    workloads         = var.workloads
    models            = var.models
    reserved_term     = var.reserved_term
    reserved_discount = var.reserved_discount
    labels            = var.labels
  }

  lifecycle {
    precondition {
      condition     = min(values(var.count_per_slot)...) == var.min_count && max(values(var.count_per_slot)...) == var.max_count
      error_message = "min_count and max_count must be the smallest and largest per-slot count."
    }
    precondition {
      condition     = !var.fixed || var.min_count == var.max_count
      error_message = "a fixed pool has the same count in every slot."
    }
  }
}
