output "site" {
  value = local.site
}

output "plan_hash" {
  value = local.plan_hash
}

output "monthly_usd" {
  description = "this tree's share of the plan's decision cost (USD per month; see README.md)"
  value       = 3094.58
}

output "slot_counts" {
  description = "instances per group and time slot (UTC start hours in slot_start_utc)"
  value       = local.slot_counts
}

output "slot_start_utc" {
  value = local.slot_start_utc
}

output "groups" {
  description = "the group resources of this tree"
  value = {
    ams_dc2_l40s_owned = module.gpu_pool_ams_dc2_l40s_owned.contract
  }
}
