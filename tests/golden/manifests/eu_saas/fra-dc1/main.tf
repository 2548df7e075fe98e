# planner manifests: site "fra-dc1" ("onprem", "onprem")
# Generated from result.json (plan "9f88a6be33be0a4a5302869b84af1f5793720fe86115ae8f7761ba533f36208d"); re-render with `planner manifests` instead of editing.
# No commitment, reservation or savings-plan resource is emitted: those are purchases a person makes.

locals {
  site                 = "fra-dc1"
  scenario             = "eu-saas"
  scenario_description = "EU SaaS with GDPR residency, two on-prem racks and EU cloud overflow"
  variant              = "base"
  variant_description  = ""
  plan_hash            = "9f88a6be33be0a4a5302869b84af1f5793720fe86115ae8f7761ba533f36208d"
  slot_start_utc       = { "night" = 0, "early" = 4, "morning" = 8, "afternoon" = 12, "evening" = 16, "late" = 20 }
  slot_counts = {
    fra_dc1_h100_owned = { "night" = 15, "early" = 15, "morning" = 15, "afternoon" = 15, "evening" = 15, "late" = 15 }
  }
}

terraform {
  required_version = ">= 1.5"
}

# group "fra-dc1-h100" / "owned": "fixed size 15"
module "gpu_pool_fra_dc1_h100_owned" {
  source            = "./modules/gpu_pool"
  name              = "fra-dc1-h100-owned"
  site              = "fra-dc1"
  site_kind         = "onprem"
  provider_name     = "onprem"
  region            = null
  offer             = "fra-dc1-h100"
  instance_type     = "H100 server GPU"
  accelerator       = "H100"
  tier              = "owned"
  fixed             = true
  gpus_per_instance = 1
  gpus_per_server   = 8
  min_count         = 15
  max_count         = 15
  count_per_slot    = { "night" = 15, "early" = 15, "morning" = 15, "afternoon" = 15, "evening" = 15, "late" = 15 }
  slot_start_utc    = local.slot_start_utc
  power_budget_kw   = 60
  workloads         = ["doc-embed", "doc-rerank", "support-chat", "support-chat-large"]
  models            = ["bge-m3", "bge-reranker-v2-m3", "llama-3-1-70b", "llama-3-1-8b"]
  reserved_term     = null
  reserved_discount = null
  labels            = { "planner-feature" = "assistant_assistant-escalation_indexing_semantic-search", "planner-n-plus-1-standby" = "true", "planner-plan-hash" = "9f88a6be33be0a4a", "planner-scenario" = "eu-saas", "planner-site" = "fra-dc1", "planner-tenant" = "acme-search_acme-support", "planner-tier" = "owned", "planner-variant" = "base", "planner-workload-doc-embed" = "true", "planner-workload-doc-rerank" = "true", "planner-workload-support-chat" = "true", "planner-workload-support-chat-large" = "true" }
}
