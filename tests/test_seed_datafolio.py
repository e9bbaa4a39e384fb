"""Seed 003 (datafolio): its README's examples run on limnos.Folio, and each parity item of issue 12 has a test.

The README examples are written as in the seed text, with ``DataFolio`` being
``limnos.Folio`` (the one name that differs). They run twice: against a real
S3 server (rclone), with the ``s3://`` URLs exactly as written and credentials
in the environment as a datafolio user has them; and on local folders, where
the ``s3://bucket`` prefix becomes a folder.
"""

from __future__ import annotations

import gc
import json
import os
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import limnos
from limnos import Folio as DataFolio  # datafolio's class name
from limnos.folio import cache

DOCS = Path(__file__).resolve().parent.parent / "docs" / "migrating" / "datafolio.md"


@pytest.fixture(autouse=True)
def _own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paths folios hand out live in the user's cache: this test's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "user-cache"))


def training_data() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.Series]:
    """Features and labels a RandomForest can learn (X_train, y_train as a one-column frame, X_test, y_test)."""
    rng = np.random.default_rng(12)
    x = pd.DataFrame(rng.random((120, 4)), columns=["f0", "f1", "f2", "f3"])
    y = (x["f0"] + x["f1"] > 1).astype(int)
    return x.iloc[:90], pd.DataFrame({"label": y.iloc[:90]}), x.iloc[90:].reset_index(drop=True), y.iloc[90:]


def write_inputs(folder: Path) -> None:
    """The data the README reads (train.parquet and labels.csv under data/...), as files under ``folder``."""
    x_train, y_train, _, _ = training_data()
    for key in ("data", "my-datalake/features", "lake"):
        (folder / key).mkdir(parents=True, exist_ok=True)
    x_train.to_parquet(folder / "data/train.parquet")
    y_train.to_csv(folder / "data/labels.csv", index=False)
    pd.DataFrame({"a": [1.0, 2.0]}).to_parquet(folder / "my-datalake/features/v3.parquet")
    for name in ("features", "labels", "data"):
        pd.DataFrame({name: [1, 2, 3]}).to_parquet(folder / f"lake/{name}.parquet")


@pytest.fixture
def s3_env(rclone_s3, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[str], str]]:  # type: ignore[no-untyped-def]
    """The README's buckets on a real S3 server, reached through the environment as a datafolio user would."""
    import s3fs

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", rclone_s3.key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", rclone_s3.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL", rclone_s3.endpoint)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    # The AWS SDK pyarrow uses checks whole-object CRCs that rclone does not keep (see archive.fs_options).
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "when_required")
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "when_required")
    fs = s3fs.S3FileSystem(**rclone_s3.options(), skip_instance_cache=True)
    for bucket in ("data", "my-bucket", "my-datalake", "lake"):
        if not fs.exists(bucket):
            fs.call_s3("create_bucket", Bucket=bucket)
    write_inputs(tmp_path / "inputs")
    for local in sorted((tmp_path / "inputs").rglob("*.*")):
        fs.put_file(str(local), local.relative_to(tmp_path / "inputs").as_posix())
    s3fs.S3FileSystem.clear_instance_cache()
    yield lambda key: f"s3://{key}"
    s3fs.S3FileSystem.clear_instance_cache()


def local_env(tmp_path: Path) -> Callable[[str], str]:
    """The README's buckets as local folders: ``s3://data/x`` becomes ``<tmp>/buckets/data/x``."""
    write_inputs(tmp_path / "buckets")

    def url(key: str) -> str:
        path = tmp_path / "buckets" / key
        path.parent.mkdir(parents=True, exist_ok=True)
        return str(path)
    return url


def make_plots() -> None:
    os.makedirs("plots", exist_ok=True)
    Path("plots/training.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(200)))
    Path("plots/cm.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(100)))
    Path("config.yaml").write_text("n_estimators: 100\nmax_depth: 10\n")


# ------------------------------------------------------------ README examples
def run_quick_start(s3: Callable[[str], str]) -> None:
    """README "Quick Start", as written (``trained_model`` is a fitted RandomForest)."""
    from sklearn.ensemble import RandomForestClassifier

    x_train, y_train, _, _ = training_data()
    trained_model = RandomForestClassifier(n_estimators=10, random_state=0).fit(x_train, y_train["label"])
    make_plots()

    # Create a bundle
    folio = DataFolio(metadata={
        'experiment': 'protein_analysis_2024',
        'model_version': 'v2.1',
        'parameters': {'learning_rate': 0.01}
    })

    # Reference large dataset (path only, not copied!)
    folio.reference_table(
        'training_data',
        path=s3('my-datalake/features/v3.parquet'),
        table_format='parquet',
        num_rows=10_000_000
    )

    # Include small results
    results_df = pd.DataFrame({'metric': ['accuracy'], 'value': [0.95]})
    folio.add_table('results', results_df)

    # Include model
    folio.add_model('classifier', trained_model)

    # Include artifacts
    folio.add_artifact('loss_curve', 'plots/training.png', category='plots')

    # Save (local or cloud)
    folio.save('analysis.tar.gz')

    # Load later
    loaded = DataFolio.load('analysis.tar.gz')
    results = loaded.get_table('results')        # From bundle
    training = loaded.get_table('training_data')  # From S3!
    model = loaded.get_model('classifier')

    pd.testing.assert_frame_equal(results, results_df)
    assert training["a"].tolist() == [1.0, 2.0]
    assert type(model) is RandomForestClassifier
    np.testing.assert_array_equal(model.predict(x_train), trained_model.predict(x_train))
    assert Path(loaded.get_artifact_path('loss_curve')).read_bytes() == Path('plots/training.png').read_bytes()


def run_complete_analysis_bundle(s3: Callable[[str], str]) -> None:
    """README "Complete Analysis Bundle" (the RandomForest example), as written."""
    from sklearn.ensemble import RandomForestClassifier

    _, _, X_test, y_test = training_data()
    make_plots()

    # Train a model
    X_train = pd.read_parquet(s3('data/train.parquet'))
    y_train = pd.read_csv(s3('data/labels.csv'))
    model = RandomForestClassifier()
    with pytest.warns(Warning):  # sklearn: a column-vector y (the README passes a one-column DataFrame)
        model.fit(X_train, y_train)

    # Create bundle
    folio = DataFolio(metadata={
        'experiment': 'rf_classification',
        'timestamp': '2024-01-15T10:30:00',
        'hyperparameters': {
            'n_estimators': 100,
            'max_depth': 10
        }
    })

    # Reference training data
    folio.reference_table(
        'training_data',
        path=s3('data/train.parquet'),
        table_format='parquet',
        num_rows=len(X_train)
    )

    # Include predictions
    predictions = model.predict(X_test)
    pred_df = pd.DataFrame({'pred': predictions, 'true': y_test})
    folio.add_table('predictions', pred_df)

    # Include model
    folio.add_model('rf_model', model)

    # Include plots
    folio.add_artifact('confusion_matrix', 'plots/cm.png', category='plots')
    folio.add_artifact('config', 'config.yaml', category='configs')

    # Save to cloud
    folio.save(s3('my-bucket/experiments/exp_001.tar.gz'))

    # Later: Reproduce
    loaded = DataFolio.load(s3('my-bucket/experiments/exp_001.tar.gz'))
    print(loaded.metadata['hyperparameters'])
    model = loaded.get_model('rf_model')
    training_data_ = loaded.get_table('training_data')

    assert loaded.metadata['hyperparameters'] == {'n_estimators': 100, 'max_depth': 10}
    np.testing.assert_array_equal(model.predict(X_test), predictions)
    pd.testing.assert_frame_equal(training_data_, X_train)
    pd.testing.assert_frame_equal(loaded.get_table('predictions'), pred_df)
    assert Path(loaded.get_artifact_path('config')).read_text() == Path('config.yaml').read_text()


def run_workflows(s3: Callable[[str], str]) -> None:
    """README "Basic Workflow", "Mixed Local and Cloud Data", "Cross-Notebook Sharing" and method chaining."""
    from sklearn.linear_model import LogisticRegression

    # Basic Workflow
    folio = DataFolio(metadata={'experiment': 'exp_001'})
    df = pd.DataFrame({'a': [1, 2, 3]})
    folio.add_table('results', df)
    folio.save('experiment.tar.gz')
    loaded = DataFolio.load('experiment.tar.gz')
    print(loaded.metadata)
    df = loaded.get_table('results')
    assert df['a'].tolist() == [1, 2, 3] and loaded.metadata['experiment'] == 'exp_001'

    # Mixed Local and Cloud Data
    folio = DataFolio(metadata={'date': '2024-01-15'})
    folio.reference_table('features', path=s3('lake/features.parquet'))
    folio.reference_table('labels', path=s3('lake/labels.parquet'))
    summary = pd.DataFrame({'stat': ['mean', 'std'], 'value': [42.5, 12.3]})
    folio.add_table('summary', summary)
    folio.save('experiment.tar.gz')
    loaded = DataFolio.load('experiment.tar.gz')
    features = loaded.get_table('features')  # Reads from S3
    summary = loaded.get_table('summary')     # From bundle
    assert features['features'].tolist() == [1, 2, 3] and summary['value'].tolist() == [42.5, 12.3]

    # Cross-Notebook Sharing: training, then evaluation
    x_train, y_train, _, _ = training_data()
    trained_model = LogisticRegression().fit(x_train, y_train['label'])
    os.makedirs('models', exist_ok=True)
    folio = DataFolio(metadata={'stage': 'training'})
    folio.reference_table('data', path=s3('lake/data.parquet'))
    folio.add_model('model', trained_model)
    folio.save('models/model_v1.tar.gz')

    folio = DataFolio.load('models/model_v1.tar.gz')
    model = folio.get_model('model')
    data = folio.get_table('data')
    results = pd.DataFrame({'score': [float(model.score(x_train, y_train['label']))], 'rows': [len(data)]})
    eval_folio = DataFolio(metadata={
        'stage': 'evaluation',
        'parent': folio.metadata
    })
    eval_folio.add_table('eval_results', results)
    eval_folio.save('models/eval_v1.tar.gz')
    assert DataFolio.load('models/eval_v1.tar.gz').metadata['parent']['stage'] == 'training'

    # Best practices: method chaining; FAQ: lineage in metadata
    chained = folio.reference_table('data1', path=s3('lake/data.parquet')) \
        .add_table('results', df) \
        .add_model('model2', trained_model)
    assert chained is folio and {'data1', 'results', 'model2'} <= set(folio)
    derived = DataFolio(metadata={
        'derived_from': folio.metadata,
        'transformations': ['filter', 'aggregate']
    })
    assert derived.metadata['derived_from']['stage'] == 'training'


EXAMPLES = [run_quick_start, run_complete_analysis_bundle, run_workflows]


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda f: f.__name__)
def test_readme_examples_on_s3(example: Callable[[Callable[[str], str]], None], s3_env: Callable[[str], str]) -> None:
    example(s3_env)


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda f: f.__name__)
def test_readme_examples_locally(example: Callable[[Callable[[str], str]], None], tmp_path: Path) -> None:
    example(local_env(tmp_path))


# ------------------------------------------------------------- model trust
def fitted(model):  # type: ignore[no-untyped-def]
    x, y, _, _ = training_data()
    return model.fit(x, y["label"])


def saved_and_loaded(folio: DataFolio, tmp_path: Path, name: str = "m.tar") -> DataFolio:
    return DataFolio.load(folio.save(tmp_path / name))


def test_sklearn_trees_load_without_trusted(tmp_path: Path) -> None:
    from sklearn.ensemble import ExtraTreesRegressor, GradientBoostingClassifier, IsolationForest, RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import PolynomialFeatures, StandardScaler
    from sklearn.tree import DecisionTreeClassifier

    x, _, _, _ = training_data()
    models = {"rf": fitted(RandomForestClassifier(n_estimators=5, random_state=0)),
              "gb": fitted(GradientBoostingClassifier(n_estimators=5, random_state=0)),
              "et": fitted(ExtraTreesRegressor(n_estimators=3, random_state=0)),
              "iso": fitted(IsolationForest(n_estimators=3, random_state=0)),
              "dt": fitted(make_pipeline(StandardScaler(), DecisionTreeClassifier(random_state=0))),
              "poly": fitted(make_pipeline(PolynomialFeatures(), RandomForestClassifier(n_estimators=2, random_state=0)))}
    folio = DataFolio()
    for name, model in models.items():
        folio.add_model(name, model)
    loaded = saved_and_loaded(folio, tmp_path)
    for name, model in models.items():
        assert loaded.item_info(name)["format"] == "skops"
        np.testing.assert_array_equal(loaded.get_model(name).predict(x), model.predict(x))


def test_untrusted_types_and_pickles_are_still_refused(tmp_path: Path) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    from test_folio import Evil, Model

    marker = tmp_path / "pwned"
    folio = (DataFolio().add_model("evil", Evil(str(marker)), format="joblib")
             .add_model("custom", Model([1.0]), format="skops")
             .add_model("hgb", fitted(HistGradientBoostingClassifier(max_iter=3))))
    loaded = saved_and_loaded(folio, tmp_path)
    with pytest.raises(limnos.UntrustedModel) as info:
        loaded.get_model("evil")
    assert type(info.value) is limnos.UntrustedModel and "joblib pickle" in str(info.value)
    assert not marker.exists()  # nothing was unpickled
    with pytest.raises(limnos.UntrustedModel, match=r"test_folio\.Model") as info:
        loaded.get_model("custom")
    assert type(info.value) is limnos.UntrustedModel
    with pytest.raises(limnos.UntrustedModel, match="TreePredictor") as info:
        loaded.get_model("hgb")  # HistGradientBoosting's node arrays are not checked: not on the list
    assert type(info.value) is limnos.UntrustedModel
    assert loaded.get_model("custom", trusted=True) == Model([1.0])
    assert loaded.get_model("hgb", trusted=True).n_iter_ == 3


@pytest.mark.parametrize("field, value, message", [
    ("left_child", 10**6, "child index"),
    ("right_child", 0, "child index"),  # back to the root: predict would loop for ever
    ("feature", 99, "column outside"),
])
def test_a_crafted_tree_is_refused(tmp_path: Path, field: str, value: int, message: str) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model = fitted(DecisionTreeClassifier(random_state=0))
    state = model.tree_.__getstate__()
    nodes = state["nodes"].copy()
    nodes[field][0] = value  # node 0 is a split node: the tree has more than one node
    state["nodes"] = nodes
    model.tree_.__setstate__(state)
    loaded = saved_and_loaded(DataFolio().add_model("clf", model), tmp_path)
    with pytest.raises(limnos.UntrustedModel, match=message) as info:
        loaded.get_model("clf")
    assert type(info.value) is limnos.UntrustedModel and "malformed decision tree" in str(info.value)


def test_a_tree_that_reads_more_columns_than_its_forest_checks_is_refused(tmp_path: Path) -> None:
    from sklearn.ensemble import RandomForestClassifier

    forest = fitted(RandomForestClassifier(n_estimators=2, random_state=0))
    forest.n_features_in_ = 2  # the forest would check 2 columns, its trees read 4
    loaded = saved_and_loaded(DataFolio().add_model("rf", forest), tmp_path)
    with pytest.raises(limnos.UntrustedModel, match="inside an ensemble"):
        loaded.get_model("rf")


# ----------------------------------------------------------- datafolio names
def test_version_code_and_hyperparameters_are_recorded(tmp_path: Path) -> None:
    ref = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(ref)
    folio = (DataFolio()
             .reference_table("external", ref, version=3, code="spark.read.parquet(...)")
             .add_table("processed", pd.DataFrame({"a": [1]}), code="df.transform(preprocessor)")
             .add_model("clf", {"w": [1, 2]}, format="joblib", hyperparameters={"learning_rate": 0.01, "epochs": 100},
                        code="model.fit(X_train, y_train)"))
    for f in (folio, saved_and_loaded(folio, tmp_path)):
        assert f.item_info("external")["version"] == 3
        assert f.item_info("external")["code"] == "spark.read.parquet(...)"
        assert f.item_info("processed")["code"] == "df.transform(preprocessor)"
        assert f.item_info("clf")["hyperparameters"] == {"learning_rate": 0.01, "epochs": 100}
        assert f.item_info("clf")["code"] == "model.fit(X_train, y_train)"
    assert DataFolio().reference_table("v", ref, version="2024-01").item_info("v")["version"] == "2024-01"


def test_bad_version_code_or_hyperparameters_add_nothing(tmp_path: Path) -> None:
    ref = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(ref)
    folio = DataFolio()
    before = dict(folio.metadata)
    with pytest.raises(limnos.FolioTypeError):
        folio.reference_table("r", ref, version=1.5)  # type: ignore[arg-type]
    with pytest.raises(limnos.FolioTypeError):
        folio.add_table("t", pd.DataFrame({"a": [1]}), code=lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(limnos.FolioError, match="must be JSON"):
        folio.add_model("m", {"w": 1}, format="joblib", hyperparameters={"when": object()})
    with pytest.raises(limnos.FolioTypeError):
        folio.add_model("m", {"w": 1}, format="joblib", hyperparameters=[("lr", 1)])  # type: ignore[arg-type]
    assert len(folio) == 0 and dict(folio.metadata) == before


def test_lineage_inside_a_folio(lake: limnos.Lake, tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2, 3]})
    raw = tmp_path / "raw.csv"
    raw.write_text("a\n1\n")
    raw_file = lake.add(str(raw), name="raw.csv").file
    folio = (DataFolio()
             .add_table("raw", df, inputs=[raw_file, "s3://bucket/raw.parquet"])
             .add_table("processed", df, inputs=["raw"])
             .add_model("model", {"k": 1}, format="joblib", inputs=["processed"])
             .add_table("final", df, inputs=["processed", "model"]))
    for f in (folio, saved_and_loaded(folio, tmp_path)):
        assert f.get_inputs("raw") == ["raw.csv@1", "s3://bucket/raw.parquet"]
        assert f.get_inputs("processed") == ["raw"]
        assert f.get_dependents("raw") == ["processed"]
        assert f.get_dependents("processed") == ["model", "final"]
        assert f.get_dependents("final") == []
        assert f.get_lineage_graph() == {"raw": ["raw.csv@1", "s3://bucket/raw.parquet"], "processed": ["raw"],
                                         "model": ["processed"], "final": ["processed", "model"]}
        for call in (f.get_inputs, f.get_dependents):
            with pytest.raises(limnos.FolioItemNotFound, match="not found"):
                call("nonexistent")
    with pytest.raises(KeyError):
        folio.get_inputs("nonexistent")


def test_copy_with_include_and_exclude_items(tmp_path: Path) -> None:
    from test_folio import Model

    artifact = tmp_path / "plot.png"
    artifact.write_bytes(b"fake image")
    folio = (DataFolio(metadata={"experiment": "exp001"})
             .add_table("data1", pd.DataFrame({"a": [1, 2, 3]}))
             .add_table("data2", pd.DataFrame({"b": [4, 5, 6]}), inputs=["data1"])
             .add_model("clf", Model([4.0]), format="joblib")
             .add_artifact("plot", artifact)
             .reference_table("ref", tmp_path / "elsewhere.parquet"))

    some = folio.copy(include_items=["data1", "ref"])
    assert list(some) == ["data1", "ref"] and some.metadata["experiment"] == "exp001"
    pd.testing.assert_frame_equal(some.get_table("data1"), pd.DataFrame({"a": [1, 2, 3]}))
    some.add_table("new", pd.DataFrame({"c": [1]}))
    assert "new" not in folio  # a separate folio

    rest = folio.copy(exclude_items=["data2"], metadata_updates={"experiment": "exp002", "notes": "modified"})
    assert list(rest) == ["data1", "clf", "plot", "ref"]
    assert rest.metadata["experiment"] == "exp002" and rest.metadata["notes"] == "modified"
    assert folio.metadata["experiment"] == "exp001"
    assert rest.get_model("clf") == Model([4.0])
    assert Path(rest.get_artifact_path("plot")).read_bytes() == b"fake image"

    url = tmp_path / "copy.tar"
    whole = folio.copy(url)
    assert DataFolio.load(url).get_inputs("data2") == ["data1"] and list(whole) == list(folio)
    assert whole.item_info("data2")["created_at"] == folio.item_info("data2")["created_at"]

    loaded_copy = DataFolio.load(folio.save(tmp_path / "f.tar")).copy(include_items=["clf"])
    with pytest.raises(limnos.UntrustedModel):
        loaded_copy.get_model("clf")  # copying does not make a stranger's pickle trusted

    with pytest.raises(limnos.FolioError, match="cannot specify both"):
        folio.copy(include_items=["data1"], exclude_items=["data2"])
    with pytest.raises(limnos.FolioItemNotFound):
        folio.copy(include_items=["nope"])
    assert not (tmp_path / "nope.tar").exists()


def test_created_at_and_updated_at(tmp_path: Path) -> None:
    from datetime import datetime

    folio = DataFolio(metadata={"x": 1})
    created = folio.metadata["created_at"]
    assert datetime.fromisoformat(created).tzinfo is not None
    assert folio.created_at == created and folio.updated_at == folio.metadata["updated_at"]
    old = "2000-01-01T00:00:00+00:00"
    for change in (lambda f: f.metadata.__setitem__("experiment", "test_001"),
                   lambda f: f.metadata.update(more=2),
                   lambda f: f.metadata.pop("x"),
                   lambda f: f.add_json("j", {"k": 1}, overwrite=True),
                   lambda f: f.remove("j")):
        dict.__setitem__(folio.metadata, "updated_at", old)
        change(folio)
        assert folio.metadata["updated_at"] > old
        assert folio.metadata["created_at"] == created

    folio.add_json("item", {"v": 1})
    first = folio.item_info("item")
    assert datetime.fromisoformat(first["created_at"]) and first["updated_at"] >= first["created_at"]
    folio._items["item"].info["updated_at"] = old  # as if added long ago
    folio.add_json("item", {"v": 2}, overwrite=True)
    assert folio.item_info("item")["created_at"] == first["created_at"]  # kept across a replacement
    assert folio.item_info("item")["updated_at"] > old

    loaded = saved_and_loaded(folio, tmp_path)
    assert loaded.metadata["created_at"] == created
    assert loaded.item_info("item")["created_at"] == first["created_at"]
    assert list(loaded.list_contents()["created_at"]) == [first["created_at"]]
    assert DataFolio(metadata={"created_at": old}).created_at == old  # a value the user gives is kept


def test_num_cols_and_dtypes_for_tables(tmp_path: Path) -> None:
    import pyarrow as pa

    frame = pd.DataFrame({"id": [1, 2], "score": [0.5, 0.25], "label": ["a", "b"]})
    folio = DataFolio().add_table("pd", frame).add_table("pa", pa.table({"z": [1.5, 2.5]}))
    pl = pytest.importorskip("polars")
    folio.add_table("pl", pl.DataFrame({"x": [1, 2, 3]}))
    for f in (folio, saved_and_loaded(folio, tmp_path)):
        info = f.item_info("pd")
        assert (info["num_rows"], info["num_cols"]) == (2, 3)
        assert info["dtypes"] == {"id": "int64", "score": "float64", "label": str(frame.dtypes["label"])}
        assert f.item_info("pa")["dtypes"] == {"z": "double"} and f.item_info("pa")["num_cols"] == 1
        assert f.item_info("pl")["dtypes"] == {"x": "Int64"} and f.item_info("pl")["num_rows"] == 3
        assert f.list_contents().set_index("name").loc["pd", "num_cols"] == 3


def test_repr_says_how_many_items() -> None:
    assert repr(DataFolio()) == "<Folio: 0 items>"
    one = DataFolio().add_json("a", [1])
    assert repr(one) == "<Folio: 1 item: a (json)>"
    many = DataFolio()
    for i in range(10):
        many.add_json(f"j{i}", i)
    assert repr(many).startswith("<Folio: 10 items: j0 (json)") and repr(many).endswith(", ...>")


@pytest.mark.parametrize("data", [[1, 2, 3], {"a": [1]}, np.arange(3), pd.Series([1, 2]), "table.csv", None])
def test_add_table_of_a_non_dataframe_is_a_type_error(data: object) -> None:
    folio = DataFolio()
    with pytest.raises(TypeError) as info:
        folio.add_table("t", data)
    assert type(info.value) is limnos.FolioTypeError and isinstance(info.value, limnos.FolioError)
    assert "t" not in folio and len(folio) == 0


def test_get_data_path_of_an_included_item_says_it_is_included(tmp_path: Path) -> None:
    ref = tmp_path / "data.parquet"
    pd.DataFrame({"a": [1]}).to_parquet(ref)
    folio = DataFolio().add_table("results", pd.DataFrame({"a": [1]})).reference_table("ref", ref)
    for f in (folio, saved_and_loaded(folio, tmp_path)):
        with pytest.raises(limnos.FolioItemIncluded, match="'results' is included in the folio") as info:
            f.get_data_path("results")
        assert info.value.name == "results"
        assert f.get_data_path("ref") == str(ref)
        assert pd.read_parquet(f.get_item_path("results"))["a"].tolist() == [1]
        with pytest.raises(limnos.FolioItemNotFound):
            f.get_item_path("ref")


# ----------------------------------------------------------------- files
@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
@pytest.mark.parametrize("suffix", [".tar", ".tar.gz"])
def test_saved_archives_respect_the_umask(tmp_path: Path, mask: int, mode: int, suffix: str) -> None:
    old = os.umask(mask)
    try:
        url = DataFolio().add_json("j", {"k": 1}).save(tmp_path / f"f{suffix}")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(url).st_mode) == mode
    assert DataFolio.load(url).get_json("j") == {"k": 1}


def test_handed_out_paths_outlive_the_folio_until_pruned(lake: limnos.Lake, tmp_path: Path) -> None:
    artifact = tmp_path / "plot.png"
    artifact.write_bytes(b"\x89PNG" + bytes(range(64)))
    folio = DataFolio().add_artifact("plot", artifact, category="plots").add_json("j", {"k": 1})
    url = folio.save(tmp_path / "f.tar")
    lake.save_folio("exp/f", folio)
    built_path = folio.get_artifact_path("plot")

    loaded = DataFolio.load(url)
    path = loaded.get_artifact_path("plot")
    lake_path = lake.get("exp/f").folio().get_artifact_path("plot")
    del folio, loaded
    gc.collect()
    for p in (path, built_path, lake_path):
        assert Path(p).read_bytes() == artifact.read_bytes()
        assert Path(p).name == "plot.png"
        assert p.startswith(cache.cache_root())
        assert not os.access(p, os.W_OK) or os.geteuid() == 0  # read-only (root writes anyway)
    assert Path(lake_path) != Path(lake.cache.path(lake.get("exp/f").folio().item_info("plot")["hash"]))

    # A cached copy someone changed is not handed out again: the folio's own bytes are.
    os.chmod(path, 0o644)
    Path(path).write_bytes(b"changed")
    again = DataFolio.load(url).get_artifact_path("plot")
    assert Path(again).read_bytes() == artifact.read_bytes()

    assert DataFolio.prune_cache(older_than=3600) == 0  # used just now: kept
    assert Path(path).exists()
    assert DataFolio.prune_cache() >= 1
    assert not Path(path).exists() and not os.path.exists(cache.cache_root() + "/" + os.listdir(cache.cache_root())[0]
                                                          if os.listdir(cache.cache_root()) else "")
    assert Path(DataFolio.load(url).get_artifact_path("plot")).read_bytes() == artifact.read_bytes()  # read again


def test_item_names_cannot_escape_the_cache(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        cache.item_path("a" * 64, "../x")
    with pytest.raises(limnos.LimnosError):
        cache.item_path("../../etc", "x")
    assert json.loads(json.dumps(DataFolio().metadata))  # timestamps are plain JSON
