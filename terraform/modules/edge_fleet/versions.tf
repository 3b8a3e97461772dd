terraform {
  # Built-in providers only (terraform_data, local-exec): the module applies without downloads.
  required_version = ">= 1.9"
}
