"""Surveys: a pipeline of steps (info, correlation, bin, redshift, fit) over many cubes on Dask.

>>> from bayesifu import survey
>>> table = survey.run_survey("survey.toml")                   # a LocalCluster of 2 workers
>>> table = survey.run_survey("survey.toml", scheduler="tcp://10.0.0.1:8786")
>>> table = survey.run_survey("survey.toml", scheduler="serial")   # this process, no Dask

See :mod:`bayesifu.survey.config` for the TOML file and :mod:`bayesifu.survey.runner` for the
resumable, failure-tolerant run.
"""

from .config import STEPS, ConfigError, SurveyConfig, cube_stem, load_config
from .pipeline import PipelineError, run_pipeline
from .runner import SERIAL, cube_status, process_cube, run_survey
from .summary import SUMMARY_FILE, summary_table, write_summary

__all__ = [
    "STEPS",
    "ConfigError",
    "SurveyConfig",
    "cube_stem",
    "load_config",
    "PipelineError",
    "run_pipeline",
    "SERIAL",
    "cube_status",
    "process_cube",
    "run_survey",
    "SUMMARY_FILE",
    "summary_table",
    "write_summary",
]
