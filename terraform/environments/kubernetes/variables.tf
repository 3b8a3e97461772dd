# Kubernetes-only settings.

variable "kubeconfig" {
  description = "Path of the kubeconfig to use."
  type        = string
  default     = "~/.kube/config"
}

variable "kube_context" {
  description = "Context in the kubeconfig (empty: its current context)."
  type        = string
  default     = ""
}

variable "namespace" {
  description = "Namespace for everything pz runs."
  type        = string
  default     = "pz"
}

variable "image" {
  description = "Container image with pz installed (its entrypoint runs `python -m edge_worker` or `python -m aggregator`)."
  type        = string
}

variable "signing" {
  description = "Snapshot and delta signing: an existing Secret (create it with kubectl, never in Terraform state) holding the key under `private_key` (aggregators) and `public_key` (edges) for ed25519, or `secret` for hmac-sha256."
  type = object({
    algorithm   = optional(string, "ed25519")
    key_id      = string
    secret_name = string
  })
  validation {
    condition     = contains(["hmac-sha256", "ed25519"], var.signing.algorithm)
    error_message = "signing.algorithm must be \"hmac-sha256\" or \"ed25519\"."
  }
}

variable "gate_url" {
  description = "How the machine running Terraform reaches the canary's Service for the rollout gate (e.g. through `kubectl port-forward svc/edge-canary 18100:80`)."
  type        = string
  default     = "http://127.0.0.1:18100"
}

variable "pz_command" {
  description = "How to run the pz command on the machine running Terraform (for the rollout gate)."
  type        = list(string)
  default     = ["pz"]
}

# The edge_fleet module's contract (same names and types; tests/test_terraform.py checks them).

variable "pops" {
  description = "Points of presence: edge replicas each runs (base_port is unused here)."
  type = map(object({
    edges     = number
    base_port = optional(number, 0)
  }))
  validation {
    condition     = length(var.pops) > 0 && alltrue([for cfg in values(var.pops) : cfg.edges >= 1 && cfg.edges <= 64])
    error_message = "pops needs at least one point of presence, each with 1 to 64 edges."
  }
}

variable "release" {
  description = "What the edges run: version (the image tag), the rules version they must serve, and PZ_* settings."
  type = object({
    version       = string
    rules_version = optional(string, "")
    config        = optional(map(string), {})
  })
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.release.version))
    error_message = "release.version must be 1 to 64 letters, digits, dots, dashes or underscores."
  }
}

variable "canary" {
  description = "The point of presence whose canary Deployment takes a release first (default: the first by name)."
  type        = string
  default     = ""
}

variable "wave_size" {
  description = "Edge pods replaced at once in each point of presence's rolling update (maxSurge; maxUnavailable is 0)."
  type        = number
  default     = 2
  validation {
    condition     = var.wave_size >= 1
    error_message = "wave_size must be at least 1."
  }
}

variable "gate" {
  description = "What the canary must show before the points of presence roll (see `pz fleet gate`)."
  type = object({
    timeout_s           = optional(number, 60)
    max_error_rate      = optional(number, 0)
    max_decision_p99_ms = optional(number, 25)
    max_probe_p99_ms    = optional(number, 250)
    max_snapshot_age_s  = optional(number, 300)
    probes              = optional(number, 40)
  })
  default = {}
}

variable "origin_url" {
  description = "The site the edges proxy (empty: the /pz/ API only)."
  type        = string
  default     = ""
}

# The aggregator module's contract.

variable "members" {
  description = "Aggregator replicas sharing the partitions as one consumer group."
  type        = number
  default     = 2
}

variable "kafka_bootstrap" {
  description = "Kafka bootstrap servers (host:port[,host:port…])."
  type        = string
}

variable "partitions" {
  description = "Partitions of every pz topic."
  type        = number
  default     = 4
}

variable "redis_url" {
  description = "Redis endpoint for the aggregator's state."
  type        = string
}

variable "snapshot_interval_s" {
  description = "Seconds between snapshot builds."
  type        = number
  default     = 30
}

variable "rules_file" {
  description = "The rules file the aggregator publishes (shipped in a ConfigMap); empty: the built-in rules."
  type        = string
  default     = ""
}
