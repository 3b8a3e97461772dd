variable "name" {
  description = "Consumer group and name prefix of the members (NAME-0, NAME-1, …)."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,30}$", var.name))
    error_message = "name must start with a lowercase letter and hold at most 31 lowercase letters, digits or dashes."
  }
}

variable "members" {
  description = "Aggregator processes sharing the partitions as one consumer group."
  type        = number
  default     = 1
  validation {
    condition     = var.members >= 1 && var.members <= 16 && floor(var.members) == var.members
    error_message = "members must be a whole number between 1 and 16."
  }
}

variable "base_port" {
  description = "HTTP port of the first member (sync and admin endpoints); member i listens on base_port + i."
  type        = number
  validation {
    condition     = var.base_port >= 1024 && var.base_port <= 65519
    error_message = "base_port must be between 1024 and 65519."
  }
}

variable "kafka_bootstrap" {
  description = "Kafka bootstrap servers (host:port[,host:port…])."
  type        = string
  validation {
    condition     = can(regex("^[^,:\\s]+:[0-9]+(,[^,:\\s]+:[0-9]+)*$", var.kafka_bootstrap))
    error_message = "kafka_bootstrap must be host:port, comma-separated for several brokers."
  }
}

variable "partitions" {
  description = "Partitions of every pz topic (events and deltas); edges must be told the same number."
  type        = number
  default     = 4
  validation {
    condition     = var.partitions >= 1 && var.partitions <= 256 && floor(var.partitions) == var.partitions
    error_message = "partitions must be a whole number between 1 and 256."
  }
}

variable "redis_url" {
  description = "Redis endpoint for the aggregator's state (redis:// or rediss://)."
  type        = string
  validation {
    condition     = can(regex("^rediss?://", var.redis_url))
    error_message = "redis_url must start with redis:// or rediss://."
  }
}

variable "snapshot_interval_s" {
  description = "Seconds between snapshot builds (an admin can also ask for one: POST /admin/snapshot)."
  type        = number
  default     = 30
  validation {
    condition     = var.snapshot_interval_s >= 0.1
    error_message = "snapshot_interval_s must be at least 0.1."
  }
}

variable "rules_file" {
  description = "The rules file (YAML, see schemas/rules) the aggregator publishes in its snapshots; empty: the built-in rules. It is linted and copied into the aggregator's state on apply, so editing it changes nothing until then."
  type        = string
  default     = ""
  validation {
    condition     = var.rules_file == "" || fileexists(var.rules_file)
    error_message = "rules_file does not exist."
  }
  validation {
    condition     = var.rules_file == "" || can(regex("^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", tostring(yamldecode(file(var.rules_file)).version)))
    error_message = "the rules file must declare its version (version: r2): rollout gates check that edges serve it."
  }
}

variable "signing" {
  description = "How snapshots and deltas are signed: the key id and the name of the environment variable (where the rollout runs) that holds the HMAC secret or the Ed25519 private key, kept out of state."
  type = object({
    algorithm  = optional(string, "hmac-sha256")
    key_id     = string
    secret_env = optional(string, "")
  })
  validation {
    condition     = contains(["hmac-sha256", "ed25519"], var.signing.algorithm)
    error_message = "signing.algorithm must be \"hmac-sha256\" or \"ed25519\"."
  }
  validation {
    condition     = var.signing.algorithm != "ed25519" || var.signing.secret_env != ""
    error_message = "signing.secret_env (the variable holding the private key) is required for ed25519."
  }
}

variable "config" {
  description = "Further PZ_* settings of the aggregator (see aggregator/config.py)."
  type        = map(string)
  default     = {}
  validation {
    condition     = alltrue([for key in keys(var.config) : can(regex("^PZ_[A-Z0-9_]+$", key))])
    error_message = "config holds PZ_* settings only."
  }
}

variable "state_dir" {
  description = "Where `pz fleet` keeps service records, logs and snapshots."
  type        = string
}

variable "pz_command" {
  description = "How to run the pz command."
  type        = list(string)
  default     = ["pz"]
}
