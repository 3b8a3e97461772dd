locals {
  state_dir = abspath(var.state_dir)
  env = merge(var.config, {
    PZ_KAFKA_BOOTSTRAP     = var.kafka_bootstrap
    PZ_REDIS_URL           = var.redis_url
    PZ_PARTITIONS          = tostring(var.partitions)
    PZ_AGGREGATOR_GROUP    = var.name
    PZ_SNAPSHOT_INTERVAL_S = tostring(var.snapshot_interval_s)
    PZ_RULES_FILE          = var.rules_file == "" ? "" : local.rules_copy
    PZ_SIGNING_ALG         = var.signing.algorithm
    PZ_SIGNING_KEY_ID      = var.signing.key_id
  })
  rules_copy    = "${local.state_dir}/rules/${var.name}.yaml"
  rules_version = var.rules_file == "" ? "builtin-1" : tostring(yamldecode(file(var.rules_file)).version)
  secret_var    = var.signing.algorithm == "ed25519" ? "PZ_SIGNING_PRIVATE_KEY" : "PZ_SIGNING_SECRET"
  secret_args   = var.signing.secret_env != "" ? ["--secret-env", "${local.secret_var}=${var.signing.secret_env}"] : []
}

# Topics first, with the partition count every member and edge relies on (existing ones are kept).
resource "terraform_data" "topics" {
  triggers_replace = { bootstrap = var.kafka_bootstrap, partitions = var.partitions }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "topics", "--bootstrap", var.kafka_bootstrap, "--partitions"])
    command     = tostring(var.partitions)
  }
}

# The rules: linted (every problem, or nothing happens) and copied whole to where the members read
# them. Members pick a changed copy up within a second, without a restart.
resource "terraform_data" "rules" {
  count            = var.rules_file == "" ? 0 : 1
  triggers_replace = { sha256 = filesha256(var.rules_file), version = local.rules_version }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "publish-rules", var.rules_file, "--to"])
    command     = local.rules_copy
  }
}

# A changed setting restarts the member; it commits what it has on SIGTERM, and the group hands
# its partitions, with their state in Redis, to the members that remain meanwhile.
resource "terraform_data" "member" {
  count            = var.members
  depends_on       = [terraform_data.topics, terraform_data.rules]
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

# The apply ends when every member publishes the new rules (a member that refused them logs why).
resource "terraform_data" "rules_published" {
  count            = var.members
  depends_on       = [terraform_data.member]
  triggers_replace = { version = local.rules_version, sha256 = var.rules_file == "" ? "" : filesha256(var.rules_file) }

  provisioner "local-exec" {
    interpreter = concat(var.pz_command, ["fleet", "await-rules", "--version", local.rules_version, "--timeout", "60"])
    command     = "http://127.0.0.1:${var.base_port + count.index}"
  }
}
