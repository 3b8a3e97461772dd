# Plans only: tests/test_terraform.py applies the module through the local environment.

variables {
  name            = "pz-aggregator"
  members         = 2
  base_port       = 18090
  kafka_bootstrap = "127.0.0.1:9092"
  partitions      = 8
  redis_url       = "redis://127.0.0.1:6379/0"
  rules_file      = "tests/rules-r5.yaml"
  signing         = { algorithm = "ed25519", key_id = "k1", secret_env = "PZ_AGG_PRIVATE_KEY" }
  state_dir       = "/tmp/pz-tftest"
}

run "members_listen_on_consecutive_ports" {
  command = plan
  assert {
    condition     = output.endpoints == ["http://127.0.0.1:18090", "http://127.0.0.1:18091"]
    error_message = "member i listens on base_port + i"
  }
  assert {
    condition     = local.env.PZ_AGGREGATOR_GROUP == "pz-aggregator" && local.env.PZ_PARTITIONS == "8"
    error_message = "members share one consumer group and the topic partition count"
  }
  assert {
    condition     = join(" ", local.secret_args) == "--secret-env PZ_SIGNING_PRIVATE_KEY=PZ_AGG_PRIVATE_KEY"
    error_message = "the private key is passed by reference, to the variable ed25519 reads"
  }
  assert {
    condition     = output.rules_version == "r5" && endswith(local.env.PZ_RULES_FILE, "/rules/pz-aggregator.yaml")
    error_message = "the rules file's version is the module's, and members read the module's copy of it"
  }
}

run "rules_without_a_version_are_refused" {
  command = plan
  variables {
    rules_file = "tests/rules-unversioned.yaml"
  }
  expect_failures = [var.rules_file]
}

run "no_rules_file_means_the_built_in_rules" {
  command = plan
  variables {
    rules_file = ""
  }
  assert {
    condition     = output.rules_version == "builtin-1" && local.env.PZ_RULES_FILE == ""
    error_message = "without a rules file the aggregator publishes the built-in rules"
  }
}

run "too_many_members_are_refused" {
  command = plan
  variables {
    members = 17
  }
  expect_failures = [var.members]
}

run "a_bootstrap_without_port_is_refused" {
  command = plan
  variables {
    kafka_bootstrap = "broker.example"
  }
  expect_failures = [var.kafka_bootstrap]
}

run "redis_url_needs_a_scheme" {
  command = plan
  variables {
    redis_url = "127.0.0.1:6379"
  }
  expect_failures = [var.redis_url]
}

run "ed25519_needs_the_private_key_reference" {
  command = plan
  variables {
    signing = { algorithm = "ed25519", key_id = "k1" }
  }
  expect_failures = [var.signing]
}
