#!/bin/bash
# The airflow-init service: runs once before the other Airflow services, on every `up`.
set -euo pipefail
umask 077
secrets=/opt/airflow/secrets

# Secrets the Airflow containers share (they read them through AIRFLOW__..._CMD): random, made on
# the first start and kept in the airflow-secrets volume until `course down --purge`.
new_secret() {
    [[ -s "$secrets/$1" ]] || python -c "$2" > "$secrets/$1"
}
new_secret jwt_secret 'import secrets; print(secrets.token_urlsafe(48), end="")'
new_secret api_secret_key 'import secrets; print(secrets.token_urlsafe(48), end="")'
new_secret fernet_key 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode(), end="")'

# The UI login (user admin) from AIRFLOW_ADMIN_PASSWORD, rewritten on every start so that a new
# password in .env takes effect with the next `course up`.
python - <<'PY'
import json
import os

password = os.environ.get("AIRFLOW_ADMIN_PASSWORD", "")
if not password:
    raise SystemExit("AIRFLOW_ADMIN_PASSWORD is empty: set it in .env (the Airflow UI login)")
path = os.environ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
with open(path, "w") as f:
    json.dump({"admin": password}, f)
PY

airflow db migrate
echo "airflow-init: done; the UI is at ${AIRFLOW__API__BASE_URL}, user admin"
