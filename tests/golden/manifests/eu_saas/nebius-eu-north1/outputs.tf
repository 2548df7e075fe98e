output "site" {
  value = local.site
}

output "plan_hash" {
  value = local.plan_hash
}

output "monthly_usd" {
  description = "this tree's share of the plan's decision cost (USD per month; see README.md)"
  value       = 19451.89
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
    nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_reserved    = nebius_mk8s_v1_node_group.nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_reserved.name
    nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_on_demand   = nebius_mk8s_v1_node_group.nebius_eu_north1_gpu_h100_sxm_1gpu_16vcpu_200gb_on_demand.name
    nebius_eu_north1_gpu_h100_sxm_8gpu_128vcpu_1600gb_on_demand = nebius_mk8s_v1_node_group.nebius_eu_north1_gpu_h100_sxm_8gpu_128vcpu_1600gb_on_demand.name
    nebius_eu_north1_gpu_h200_sxm_1gpu_16vcpu_200gb_on_demand   = nebius_mk8s_v1_node_group.nebius_eu_north1_gpu_h200_sxm_1gpu_16vcpu_200gb_on_demand.name
    nebius_eu_north1_gpu_l40s_d_4gpu_128vcpu_768gb_on_demand    = nebius_mk8s_v1_node_group.nebius_eu_north1_gpu_l40s_d_4gpu_128vcpu_768gb_on_demand.name
  }
}
