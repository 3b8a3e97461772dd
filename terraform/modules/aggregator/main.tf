locals {
  state_dir = abspath(var.state_dir)
  env = merge(var.config, {
    PZ_KAFKA_BOOTSTRAP     = var.kafka_bootstrap
    PZ_REDIS_URL           = var.redis_url
    PZ_PARTITIONS          = tostring(var.partitions)
    PZ_AGGREGATOR_GROUP    = var.name
    PZ_SNAPSHOT_INTERVAL_S = tostring(var.snapshot_interval_s)
    PZ_RULES_VERSION       = var.rules_version
    PZ_SIGNING_ALG         = var.signing.algorithm
    PZ_SIGNING_KEY_ID      = var.signing.key_id
  })
  secret_var  = var.signing.algorithm == "ed25519" ? "PZ_SIGNING_PRIVATE_KEY" : "PZ_SIGNING_SECRET"
  secret_args = var.signing.secret_env != "" ? ["--secret-env", "${local.secret_var}=${var.signing.secret_env}"] : []
}

# Topics first, with the partition count every member and edge relies on (existing ones are kept).
resource "terraform_data" "topics" {
  triggers_replace = { bootstrap = var.kafka_bootstrap, partitions = var.partitions }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "topics", "--bootstrap", var.kafka_bootstrap, "--partitions"])
    command     = tostring(var.partitions)
  }
}

# A changed setting restarts the member; it commits what it has on SIGTERM, and the group hands
# its partitions, with their state in Redis, to the members that remain meanwhile.
resource "terraform_data" "member" {
  count            = var.members
  depends_on       = [terraform_data.topics]
  triggers_replace = { env = local.env, secret_args = local.secret_args, port = var.base_port + count.index }
  input = {
    name       = "${var.name}-${count.index}"
    state_dir  = local.state_dir
    pz_command = var.pz_command
  }

  provisioner "local-exec" {
    interpreter = concat(
      var.pz_command,
      ["fleet", "start", "--kind", "aggregator", "--state-dir", local.state_dir, "--port", tostring(var.base_port + count.index)],
      flatten([for key, value in local.env : ["--env", "${key}=${value}"]]),
      local.secret_args,
    )
    command = "${var.name}-${count.index}"
  }

  provisioner "local-exec" {
    when        = destroy
    interpreter = concat(self.input.pz_command, ["fleet", "stop", "--state-dir", self.input.state_dir])
    command     = self.input.name
  }
}
