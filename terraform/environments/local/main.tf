# The whole system as real processes on this machine, managed by `pz fleet` through local-exec:
# an embedded broker and Redis, the demo shop as the origin, the aggregator, and an edge fleet
# rolled out canary first, then in gated waves.

locals {
  state_dir       = abspath(var.state_dir)
  kafka_bootstrap = "127.0.0.1:${var.ports.broker}"
  redis_url       = "redis://127.0.0.1:${var.ports.redis}/0"
  # The development key: fine on loopback. Production environments reference a real secret.
  signing = { algorithm = "hmac-sha256", key_id = "pz-dev" }
}

resource "terraform_data" "service" {
  for_each = {
    broker = var.ports.broker
    redis  = var.ports.redis
    shop   = var.ports.shop
  }
  input = { name = "local-${each.key}", kind = each.key, port = each.value, state_dir = local.state_dir, pz_command = var.pz_command }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "start", "--kind", each.key, "--port", tostring(each.value), "--state-dir", local.state_dir])
    command     = "local-${each.key}"
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = concat(self.input.pz_command, ["fleet", "stop", "--state-dir", self.input.state_dir])
    command     = self.input.name
  }
}

module "aggregator" {
  source     = "../../modules/aggregator"
  depends_on = [terraform_data.service]

  name                = "pz-aggregator"
  members             = 1
  base_port           = var.ports.aggregator
  kafka_bootstrap     = local.kafka_bootstrap
  partitions          = var.partitions
  redis_url           = local.redis_url
  snapshot_interval_s = var.snapshot_interval_s
  rules_file          = var.rules_file != "" ? abspath(var.rules_file) : abspath("${path.module}/../../../pz/demo_shop/rules.yaml")
  signing             = local.signing
  config              = { PZ_SESSION_TIMEOUT_MS = "6000" } # a tansu group join takes half of it
  state_dir           = local.state_dir
  pz_command          = var.pz_command
}

module "edge_fleet" {
  source     = "../../modules/edge_fleet"
  depends_on = [module.aggregator]

  name       = "edge"
  pops       = { for pop, edges in var.edges_per_pop : pop => { edges = edges, base_port = var.ports.edges[pop] } }
  release    = var.release
  wave_size  = var.wave_size
  gate       = var.gate
  origin_url = "http://127.0.0.1:${var.ports.shop}"
  sync = {
    aggregator_url  = module.aggregator.url
    transport       = "kafka"
    kafka_bootstrap = local.kafka_bootstrap
    partitions      = module.aggregator.partitions
  }
  signing    = local.signing
  state_dir  = local.state_dir
  pz_command = var.pz_command
}
