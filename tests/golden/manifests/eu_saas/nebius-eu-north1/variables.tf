# Inputs of site "nebius-eu-north1": what the plan cannot know (images, networks, accounts).

variable "cluster_id" {
  description = "Managed Kubernetes (mk8s) cluster that owns the node groups"
  type        = string
}

variable "boot_disk_gib" {
  description = "boot disk size in GiB"
  type        = number
  default     = 200
}

variable "gpu_drivers_preset" {
  description = "GPU drivers preset of the nodes"
  type        = string
  default     = "cuda12"
}
