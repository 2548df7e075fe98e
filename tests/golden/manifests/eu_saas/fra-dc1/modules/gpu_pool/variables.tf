# The contract of a GPU pool the planner sized: a GPU cloud without an official Terraform
# provider (e.g. Lambda), an on-prem rack or an edge node. The module creates nothing outside
# Terraform; it checks the contract and publishes it (terraform_data "contract", outputs) for
# the tooling that provisions the pool (an inventory, a cluster API, a ticket).

variable "name" {
  description = "pool name (lowercase letters, digits, dashes)"
  type        = string
}

variable "site" {
  description = "planner site id"
  type        = string
}

variable "site_kind" {
  description = "cloud, onprem or edge"
  type        = string

  validation {
    condition     = contains(["cloud", "onprem", "edge"], var.site_kind)
    error_message = "site_kind must be cloud, onprem or edge."
  }
}

variable "provider_name" {
  description = "provider of the site (lambda, onprem, ...)"
  type        = string
}

variable "region" {
  description = "cloud region, null for a declared site"
  type        = string
  default     = null
}

variable "offer" {
  description = "planner offer id"
  type        = string
}

variable "instance_type" {
  description = "instance type (cloud) or server GPU model (declared sites)"
  type        = string
}

variable "accelerator" {
  description = "GPU model"
  type        = string
}

variable "tier" {
  description = "owned, bought, reserved (fixed for the month), on_demand or spot (per slot)"
  type        = string

  validation {
    condition     = contains(["owned", "bought", "reserved", "on_demand", "spot"], var.tier)
    error_message = "tier must be owned, bought, reserved, on_demand or spot."
  }
}

variable "fixed" {
  description = "true for a fixed-size pool (baseline tiers): every slot has the same count"
  type        = bool
}

variable "gpus_per_instance" {
  description = "GPUs per instance (1 on declared sites: counts are GPUs there)"
  type        = number
}

variable "gpus_per_server" {
  description = "GPUs per server (declared sites), GPUs per instance (clouds)"
  type        = number
}

variable "min_count" {
  description = "smallest per-slot count"
  type        = number
}

variable "max_count" {
  description = "largest per-slot count"
  type        = number
}

variable "count_per_slot" {
  description = "instances per time slot id"
  type        = map(number)

  validation {
    condition     = alltrue([for n in values(var.count_per_slot) : n >= 0 && floor(n) == n])
    error_message = "count_per_slot values must be whole numbers >= 0."
  }
}

variable "slot_start_utc" {
  description = "UTC start hour per time slot id"
  type        = map(number)
}

variable "power_budget_kw" {
  description = "facility power budget of the site in kW (null: none)"
  type        = number
  default     = null
}

variable "workloads" {
  description = "planner workloads served by the pool"
  type        = list(string)
}

variable "models" {
  description = "models served by the pool"
  type        = list(string)
}

variable "reserved_term" {
  description = "term of reserved capacity as priced (1y, 3y); no commitment is purchased here"
  type        = string
  default     = null
}

variable "reserved_discount" {
  description = "discount of reserved capacity as applied in the plan's price (fraction)"
  type        = number
  default     = null
}

variable "labels" {
  description = "labels (lowercase [a-z0-9_-], at most 63 characters)"
  type        = map(string)
  default     = {}
}
