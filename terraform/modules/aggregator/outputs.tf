output "endpoints" {
  description = "HTTP endpoint of every member (sync, health, metrics, admin)."
  value       = [for i in range(var.members) : "http://127.0.0.1:${var.base_port + i}"]
}

output "url" {
  description = "The endpoint edges sync from (the first member)."
  value       = "http://127.0.0.1:${var.base_port}"
}

output "partitions" {
  description = "Partitions of the pz topics; edges must be configured with the same number."
  value       = var.partitions
}

output "rules_version" {
  description = "The rules version the aggregator stamps on snapshots (the rules file's own)."
  value       = local.rules_version
}
