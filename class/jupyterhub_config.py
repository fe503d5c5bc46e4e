"""JupyterHub for the class: PAM log-in, one JupyterLab per Unix account, on 127.0.0.1 only.

`make class` runs it (through classctl.py hub, as root) with CLASS_ROOT set; the class's members,
port and paths come from CLASS_ROOT/etc/class.json, written by `make class-setup`.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from classctl import Class  # noqa: E402

c = get_config()  # noqa: F821 (provided by traitlets when JupyterHub loads this file)
klass = Class.load(Path(os.environ["CLASS_ROOT"]))
state = klass.hub_dir

# Only this machine: the public proxy, the hub's API and the proxy's API on 127.0.0.1.
c.JupyterHub.bind_url = f"http://127.0.0.1:{klass.port}"
c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{klass.port + 1}"
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{klass.port + 2}"
c.ConfigurableHTTPProxy.command = [str(HERE / "node_modules" / ".bin" / "configurable-http-proxy")]
c.Spawner.ip = "127.0.0.1"

# State survives a restart: users, cookies (so logged-in students stay logged in), the pid file for
# `make class-stop`. On stop, the hub stops the proxy and every student's server (cleanup_servers).
c.JupyterHub.db_url = f"sqlite:///{state / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
c.JupyterHub.cleanup_servers = True

# The real log-in: PAM, for the class's accounts only.
c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = {klass.instructor, *klass.students}
c.PAMAuthenticator.open_sessions = False

# Each member's JupyterLab runs as that Unix account, from the class venv, in the home folder.
c.Spawner.cmd = [str(klass.venv / "bin" / "jupyterhub-singleuser")]
c.Spawner.default_url = "/lab"
c.Spawner.notebook_dir = "~"
c.Spawner.http_timeout = 60
c.Spawner.start_timeout = 60


def class_environment(spawner):
    """Role-specific Jupyter configuration (lab extensions, nbgrader) for the member being started."""
    spawner.environment.update(klass.user_env(spawner.user.name))


c.Spawner.pre_spawn_hook = class_environment
