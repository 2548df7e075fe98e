output "contract" {
  description = "the pool as the planner sized it"
  value       = terraform_data.contract.output
}

output "servers_per_slot" {
  description = "servers per time slot: ceil(instances x GPUs per instance / GPUs per server)"
  value       = local.servers_per_slot
}

output "max_servers" {
  value = max(values(local.servers_per_slot)...)
}

output "max_gpus" {
  value = var.max_count * var.gpus_per_instance
}
