variable "name" {
  description = "Fleet name; every edge is called NAME-POP-INDEX."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name must start with a lowercase letter and hold at most 31 lowercase letters, digits or dashes."
  }
}

variable "pops" {
  description = "Points of presence: how many edge workers each runs, and (local processes) the first of their loopback ports."
  type = map(object({
    edges     = number
    base_port = optional(number, 0)
  }))
  validation {
    condition     = length(var.pops) > 0 && alltrue([for pop, cfg in var.pops : can(regex("^[a-z][a-z0-9-]{0,20}$", pop))])
    error_message = "pops needs at least one point of presence, each named with lowercase letters, digits or dashes (at most 21)."
  }
  validation {
    condition     = alltrue([for cfg in values(var.pops) : cfg.edges >= 1 && cfg.edges <= 64 && floor(cfg.edges) == cfg.edges])
    error_message = "every point of presence runs a whole number of edges between 1 and 64."
  }
  validation {
    condition     = alltrue([for cfg in values(var.pops) : cfg.base_port == 0 || (cfg.base_port >= 1024 && cfg.base_port + cfg.edges <= 65536)])
    error_message = "base_port must be 0 (not process-managed) or leave room for every edge between 1024 and 65535."
  }
}

variable "release" {
  description = "What the edges run: a version label, the rules version they must serve, and PZ_* settings of this release."
  type = object({
    version       = string
    rules_version = optional(string, "")
    config        = optional(map(string), {})
  })
  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", var.release.version))
    error_message = "release.version must be 1 to 64 letters, digits, dots, dashes or underscores."
  }
  validation {
    condition     = alltrue([for key in keys(var.release.config) : can(regex("^PZ_[A-Z0-9_]+$", key))])
    error_message = "release.config holds PZ_* settings only (see edge_worker/config.py)."
  }
  validation {
    condition     = length(setintersection(keys(var.release.config), ["PZ_EDGE_PORT", "PZ_RELEASE", "PZ_EDGE_STATE_DIR", "PZ_SIGNING_SECRET", "PZ_SIGNING_PRIVATE_KEY"])) == 0
    error_message = "release.config must not set PZ_EDGE_PORT, PZ_RELEASE or PZ_EDGE_STATE_DIR (the module sets them) nor signing secrets (use signing.secret_env)."
  }
}

variable "canary" {
  description = "The edge that takes a release first (default: the first edge of the first point of presence)."
  type        = string
  default     = ""
}

variable "wave_size" {
  description = "Edges per wave after the canary."
  type        = number
  default     = 2
  validation {
    condition     = var.wave_size >= 1 && floor(var.wave_size) == var.wave_size
    error_message = "wave_size must be a whole number of at least 1."
  }
}

variable "sync" {
  description = "Where the edges get snapshots (the aggregator) and deltas (Kafka, or the aggregator over HTTP)."
  type = object({
    aggregator_url  = string
    transport       = optional(string, "kafka")
    kafka_bootstrap = optional(string, "")
    partitions      = optional(number, 4)
  })
  validation {
    condition     = can(regex("^https?://", var.sync.aggregator_url))
    error_message = "sync.aggregator_url must be an http:// or https:// URL."
  }
  validation {
    condition     = contains(["kafka", "http"], var.sync.transport)
    error_message = "sync.transport must be \"kafka\" or \"http\"."
  }
  validation {
    condition     = var.sync.transport == "http" || var.sync.kafka_bootstrap != ""
    error_message = "sync.kafka_bootstrap is required when sync.transport is \"kafka\"."
  }
}

variable "origin_url" {
  description = "The site the edges proxy (empty: the /pz/ API only)."
  type        = string
  default     = ""
}

variable "signing" {
  description = "How edges verify snapshots and deltas. ed25519: the public key (edges never hold a signing secret); hmac-sha256: the name of an environment variable that holds the shared secret where the rollout runs (kept out of state)."
  type = object({
    algorithm  = optional(string, "hmac-sha256")
    key_id     = string
    public_key = optional(string, "")
    secret_env = optional(string, "")
  })
  validation {
    condition     = contains(["hmac-sha256", "ed25519"], var.signing.algorithm)
    error_message = "signing.algorithm must be \"hmac-sha256\" or \"ed25519\"."
  }
  validation {
    condition     = var.signing.algorithm != "ed25519" || var.signing.public_key != ""
    error_message = "signing.public_key is required for ed25519."
  }
}

variable "gate" {
  description = "What an edge must show after taking a release before the next wave starts."
  type = object({
    timeout_s           = optional(number, 60)
    max_error_rate      = optional(number, 0)
    max_decision_p99_ms = optional(number, 25)
    max_probe_p99_ms    = optional(number, 250)
    max_snapshot_age_s  = optional(number, 300)
    probes              = optional(number, 40)
  })
  default = {}
  validation {
    condition     = var.gate.timeout_s > 0 && var.gate.max_error_rate >= 0 && var.gate.max_error_rate <= 1 && var.gate.probes >= 1
    error_message = "gate.timeout_s must be positive, gate.max_error_rate between 0 and 1, gate.probes at least 1."
  }
}

variable "state_dir" {
  description = "Where `pz fleet` keeps service records, logs and the rollout log."
  type        = string
}

variable "pz_command" {
  description = "How to run the pz command (e.g. [\"/opt/pz/.venv/bin/pz\"])."
  type        = list(string)
  default     = ["pz"]
}
