"""Environment variables that ClearML documents as setting one configuration value each."""

from __future__ import annotations

FIXED_VARIABLES: dict[str, str] = {
    "CLEARML_CACHE_DIR": "sdk.storage.cache.default_base_dir",
    "CLEARML_API_HOST": "api.api_server",
    "CLEARML_WEB_HOST": "api.web_server",
    "CLEARML_FILES_HOST": "api.files_server",
    "CLEARML_API_ACCESS_KEY": "api.credentials.access_key",
    "CLEARML_API_SECRET_KEY": "api.credentials.secret_key",
    "CLEARML_WORKER_ID": "agent.worker_id",
    "CLEARML_WORKER_NAME": "agent.worker_name",
    "CLEARML_AGENT_GIT_USER": "agent.git_user",
    "CLEARML_AGENT_GIT_PASS": "agent.git_pass",
    "CLEARML_AGENT_GIT_HOST": "agent.git_host",
    "CUDA_VERSION": "agent.cuda_version",
    "CUDNN_VERSION": "agent.cudnn_version",
}
