"""Packaging for lakeboost: the package lives in lib/lakeboost (see DESIGN)."""

from setuptools import find_packages, setup

# One place for version ranges. Spark and Delta move together: delta-spark 4.4.0's
# jar is built for Spark 4.2 (delta-spark_4.2_2.13), so pyspark is held to 4.2.x.
# delta-spark 4.4.1 is on PyPI but its jar is not on Maven Central, hence the pin.
# PySpark 4.2 does not fully support pandas 3, so pandas stays on 2.x.
#
# Spark itself is an extra: on Databricks (and on clusters with their own Spark) the runtime
# provides pyspark and Delta, and a wheel that pulls pyspark from the package index over the
# runtime's breaks it. Locally, bootstrap installs `.[spark,test,dev]`; the packed executor
# environment of spark-submit.sh includes the `spark` extra.
SPARK_REQUIRES = [
    "pyspark[connect]>=4.2,<4.3",  # [connect]: the Spark Connect client (grpc), for SPARK_REMOTE sessions
    "delta-spark==4.4.0",
]
INSTALL_REQUIRES = [
    "xgboost>=3.3,<3.5",  # 3.3: xgboost.spark over Spark Connect (needs Python 3.12+)
    "hyperopt>=0.2.7,<0.4",
    "optuna>=5.1,<6",  # training.tune.backend: optuna (multivariate TPE, pruners, JournalStorage)
    "pandas>=2.2,<3",
    "pyarrow>=18",
    "numpy>=1.26,<3",
    "scikit-learn>=1.5,<2",
    "threadpoolctl>=3.1",  # the xgboost workers' OpenMP threads (train/worker_files.py)
    "mlflow>=3.1,<4",
    "pydantic>=2.7,<3",
    "PyYAML>=6,<7",
    "click>=8,<9",  # the lakeboost command (lakeboost/cli.py)
    "matplotlib>=3.8,<4",
]

EXTRAS_REQUIRE = {
    "spark": SPARK_REQUIRES,
    # databricks-bundles: Databricks' own typed job models check the bundle (tests/test_scheduling.py);
    # pinned, as a new release may add or drop fields.
    "test": ["pytest>=8,<10", "pytest-xdist>=3,<4", "chispa>=0.10,<1", "jsonschema>=4", "jupytext>=1.16",
             "hypothesis>=6.100,<7", "databricks-bundles==1.22.1"],
    # Linters pinned: a new release with new rules must not turn CI red on its own.
    "dev": ["ruff==0.17.6", "mypy==2.4.1", "venv-pack>=0.2", "build>=1"],
    # No "airflow" extra: Airflow's pins would fight the runtime's. scripts/install-airflow.sh puts
    # Airflow 3 and its Spark provider in a virtualenv of their own (.venv-airflow), as .ci/run does.
}

# The default project rides in the wheel, laid out as in the repository so the same files work in
# both: conf/ (whose application.python_path is ../examples) and the demo application it names.
# An installed lakeboost then runs without a checkout (lakeboost.config.project); `lakeboost init
# DIR` writes them out to edit. They are data under lakeboost/default_project/, mapped here from
# the repository's own directories, not copies.
PROJECT = "lakeboost.default_project"
PROJECT_DIRS = {f"{PROJECT}.conf": "conf", f"{PROJECT}.examples.card_fraud": "examples/card_fraud"}

setup(
    name="lakeboost",
    version="0.1.0",
    description="Distributed big-data training on Spark: Delta lakehouse to tuned XGBoost models",
    package_dir={"": "lib", **PROJECT_DIRS},
    packages=[*find_packages("lib"), *PROJECT_DIRS],
    package_data={"lakeboost": ["py.typed"], f"{PROJECT}.conf": ["*.json", "*/*.yml"]},
    python_requires=">=3.12,<3.14",
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    # lakeboost.cli:console exits with main()'s code, also where the caller ignores a return value
    # (a Databricks python_wheel_task calls the entry point's function).
    entry_points={"console_scripts": ["lakeboost=lakeboost.cli:console"]},
)
