"""Environment variables that ClearML and clearml-agent document as setting one configuration value.

Taken from clearml's ``backend_api/session/defs.py`` and ``config/defs.py``, clearml-agent's
``definitions.py`` (``ENVIRONMENT_CONFIG`` and the ``ENV_*`` entries that stand for a config key)
and the "Environment Variables" pages of the ClearML docs. Where two names set one key, the one
ClearML prefers comes later, so it wins when both are set. Variables that only switch behaviour
(``CLEARML_OFFLINE_MODE``, ``CLEARML_AGENT_FORCE_UV``, ...) or name the file itself
(``CLEARML_CONFIG_FILE``) have no key and are not listed.
"""

from __future__ import annotations

FIXED_VARIABLES: dict[str, str] = {
    # sdk
    "CLEARML_CACHE_DIR": "sdk.storage.cache.default_base_dir",
    "CLEARML_DEFAULT_OUTPUT_URI": "sdk.development.default_output_uri",
    "CLEARML_LOG_ENVIRONMENT": "sdk.development.log_os_environments",
    "CLEARML_SUPPRESS_UPDATE_MESSAGE": "sdk.development.suppress_update_message",
    "CLEARML_DEVELOPMENT_DEFAULT_SHELL_BINARY_PATH": "sdk.development.default_shell_binary",
    "CLEARML_ENABLE_ENV_CONFIG_SECTION": "sdk.apply_environment",
    "CLEARML_ENABLE_FILES_CONFIG_SECTION": "sdk.apply_files",
    # AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_DEFAULT_REGION are not overrides: ClearML reads
    # them only where sdk.aws.s3 leaves key / secret / region empty, and so does the S3 plugin's
    # credential chain (clearml.conf first, then the environment).
    "GOOGLE_APPLICATION_CREDENTIALS": "sdk.google.storage.credentials_json",
    # api
    "CLEARML_API_HOST": "api.api_server",
    "CLEARML_WEB_HOST": "api.web_server",
    "CLEARML_FILES_HOST": "api.files_server",
    "CLEARML_API_ACCESS_KEY": "api.credentials.access_key",
    "CLEARML_API_SECRET_KEY": "api.credentials.secret_key",
    "CLEARML_API_HOST_VERIFY_CERT": "api.verify_certificate",
    "CLEARML_API_DEFAULT_REQ_METHOD": "api.http.default_method",
    "CLEARML_API_EXTRA_RETRY_CODES": "api.http.extra_retry_codes",
    # agent
    "CLEARML_WORKER_ID": "agent.worker_id",
    "CLEARML_WORKER_NAME": "agent.worker_name",
    "CLEARML_AGENT_GIT_USER": "agent.git_user",
    "CLEARML_AGENT_GIT_PASS": "agent.git_pass",
    "CLEARML_AGENT_GIT_HOST": "agent.git_host",
    "CLEARML_AGENT_GIT_USE_MS_ENTRA_TOKEN": "agent.git_use_ms_entra_token",
    "CLEARML_AGENT_GIT_USE_AZURE_PAT": "agent.git_use_azure_pat",
    "CLEARML_AGENT_SSH_URL_REPLACEMENT_SCHEME": "agent.translate_ssl_replacement_scheme",
    "CUDA_VERSION": "agent.cuda_version",
    "CLEARML_CUDA_VERSION": "agent.cuda_version",
    "CUDNN_VERSION": "agent.cudnn_version",
    "CLEARML_CUDNN_VERSION": "agent.cudnn_version",
    "CLEARML_CPU_ONLY": "agent.cpu_only",
    "CLEARML_AGENT_CRASH_ON_EXCEPTION": "agent.crash_on_exception",
    "CLEARML_DOCKER_IMAGE": "agent.default_docker.image",
    "CLEARML_AGENT_EXTRA_DOCKER_ARGS": "agent.extra_docker_arguments",
    "CLEARML_AGENT_DOCKER_ARGS_FILTERS": "agent.docker_args_filters",
    "CLEARML_AGENT_DOCKER_ARGS_HIDE_ENV": "agent.hide_docker_command_env_vars.extra_keys",
    "CLEARML_AGENT_DISABLE_SSH_MOUNT": "agent.disable_ssh_mount",
    "CLEARML_AGENT_ABORT_CALLBACK_TIMEOUT": "agent.abort_callback_max_timeout",
    "CLEARML_AGENT_CUSTOM_BUILD_SCRIPT": "agent.custom_build_script",
    "CLEARML_AGENT_VENV_CACHE_PATH": "agent.venvs_cache.path",
    "CLEARML_AGENT_PACKAGE_PYTORCH_RESOLVE": "agent.package_manager.pytorch_resolve",
    "CLEARML_EXTRA_PIP_INSTALL_FLAGS": "agent.package_manager.extra_pip_install_flags",
}
