variable "state_dir" {
  description = "Where the processes keep their records, logs and data."
  type        = string
  default     = "../../../.pz/terraform-local"
}

variable "pz_command" {
  description = "How to run the pz command (the tests pass the virtualenv's)."
  type        = list(string)
  default     = ["pz"]
}

variable "ports" {
  description = "Loopback ports: broker, Redis, demo shop, aggregator, and the first edge port of each point of presence."
  type = object({
    broker     = number
    redis      = number
    shop       = number
    aggregator = number
    edges      = map(number)
  })
  default = {
    broker     = 19092
    redis      = 16379
    shop       = 18081
    aggregator = 18090
    edges      = { "local-a" = 18100, "local-b" = 18200 }
  }
}

variable "edges_per_pop" {
  description = "Edge workers per point of presence."
  type        = map(number)
  default     = { "local-a" = 2, "local-b" = 1 }
  validation {
    condition     = length(var.edges_per_pop) > 0
    error_message = "edges_per_pop needs at least one point of presence."
  }
}

variable "release" {
  description = "The edge release to roll out (see modules/edge_fleet)."
  type = object({
    version       = string
    rules_version = optional(string, "")
    config        = optional(map(string), {})
  })
  default = { version = "v1" }
}

variable "rules_file" {
  description = "The rules the aggregator publishes (empty: the demo shop's, pz/demo_shop/rules.yaml)."
  type        = string
  default     = ""
}

variable "wave_size" {
  description = "Edges per wave after the canary."
  type        = number
  default     = 1
}

variable "gate" {
  description = "Rollout gate bounds (see modules/edge_fleet)."
  type        = any
  default     = {}
}

variable "partitions" {
  description = "Partitions of every pz topic."
  type        = number
  default     = 4
}

variable "snapshot_interval_s" {
  description = "Seconds between snapshot builds."
  type        = number
  default     = 2
}
