"""Where a run's metrics go besides metrics.csv: TensorBoard (``tensorboard=true``) and Weights &
Biases (``track=true``), behind one interface the runner calls.

W&B's mode: ``wandb_mode="auto"`` takes ``$WANDB_MODE`` when set, else ``online`` when an API key
is configured (``$WANDB_API_KEY`` or a ``wandb login``), else ``offline`` (the run is written under
``RUN_DIR/wandb`` and can be uploaded later with ``wandb sync``); offline needs no network.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any


def wandb_mode(requested: str) -> str:
    if requested != "auto":
        return requested
    if os.environ.get("WANDB_MODE"):
        return os.environ["WANDB_MODE"]
    if os.environ.get("WANDB_API_KEY"):
        return "online"
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        if "api.wandb.ai" in netrc.read_text():
            return "online"
    except OSError:
        pass
    return "offline"


class Trackers:
    """TensorBoard and W&B for one run: :meth:`log` a metrics row, :meth:`finish` with the summary."""

    def __init__(self, run_dir: Path, config: Any, resume: bool = False) -> None:
        self.tb = None
        self.wandb_run = None
        if config.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:
                print("genmarl: tensorboard=true but the tensorboard package is not installed: no event files for this run "
                      "(metrics.csv has every value); pip install tensorboard, or set tensorboard=false", file=sys.stderr)
            else:
                self.tb = SummaryWriter(str(run_dir))
        if config.track:
            import wandb

            mode = wandb_mode(config.wandb_mode)
            self.wandb_run = wandb.init(
                project=config.wandb_project, name=run_dir.name, dir=str(run_dir), config=config.to_dict(), mode=mode,
                id=_wandb_id(run_dir), resume="allow" if resume else None, reinit="finish_previous",
            )  # fmt: skip

    def log(self, row: dict[str, Any], step: int) -> None:
        values = {k: float(v) for k, v in row.items() if k not in ("update", "env_steps") and v != "" and v is not None}
        if self.tb is not None:
            for k, v in values.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb_run is not None:
            self.wandb_run.log(values, step=step)

    def finish(self, summary: dict[str, Any], step: int) -> None:
        """The final evaluation (``eval/*`` of the summary) and the run's summary; closes both."""
        final = {k: float(v) for k, v in summary.items() if k.startswith("eval/") and isinstance(v, (int, float))}
        if self.tb is not None:
            for k, v in final.items():
                self.tb.add_scalar(k, v, step)
        if self.wandb_run is not None:
            self.wandb_run.log(final, step=step)
            for k, v in summary.items():
                if isinstance(v, (int, float, str)):
                    self.wandb_run.summary[k] = v
        self.close()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()
            self.tb = None
        if self.wandb_run is not None:
            self.wandb_run.finish()
            self.wandb_run = None


def _wandb_id(run_dir: Path) -> str:
    """One W&B run id per run directory, kept in it, so that --resume continues the same W&B run."""
    path = run_dir / "wandb_id.txt"
    try:
        return path.read_text().strip()
    except OSError:
        import secrets

        run_id = secrets.token_hex(8)
        path.write_text(run_id + "\n")
        return run_id
