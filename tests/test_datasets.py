"""Tests for skdistill.datasets: loaders against the real files, downloads, occlusion, mixtures."""
import functools
import gzip
import hashlib
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import data_home, require_file
from sklearn.linear_model import LogisticRegression

from skdistill.datasets import (
    ChecksumError,
    DataFileNotFoundError,
    get_data_home,
    load_adult,
    load_fashion_mnist,
    load_heloc,
    load_higgs,
    load_magic,
    load_mnist,
    make_gaussian_mixture,
    occlude,
)
from skdistill.datasets import _base

MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
# SHA-256 of the decompressed Fashion-MNIST files (shared/data/README.md): Zalando's IDX content.
# Debian recompressed the .gz files, so the compressed bytes match neither Zalando's MD5 nor ours.
FASHION_IDX_SHA256 = {
    "train-images-idx3-ubyte.gz":
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte.gz":
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte.gz":
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte.gz":
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _idx_bytes(array):
    """``array`` as an IDX file of unsigned bytes: magic number, one size per axis, values."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_idx_test_split(folder, labels, gzipped=False):
    """Write a tiny test split (``t10k-*`` IDX files) with these labels; return its images."""
    folder.mkdir(parents=True, exist_ok=True)
    labels = np.asarray(labels)
    images = (np.arange(len(labels) * 28 * 28).reshape(-1, 28, 28) + labels[:, None, None]) % 256
    for name, array in (("t10k-images-idx3-ubyte", images), ("t10k-labels-idx1-ubyte", labels)):
        raw = _idx_bytes(array)
        if gzipped:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return images


# --- where files are looked for -------------------------------------------------------------

def test_data_home_argument_beats_env_beats_home(monkeypatch, tmp_path):
    monkeypatch.setenv("SKDISTILL_DATA", str(tmp_path / "env"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert get_data_home(tmp_path / "arg") == tmp_path / "arg"
    assert get_data_home() == tmp_path / "env"
    monkeypatch.delenv("SKDISTILL_DATA")
    assert get_data_home() == tmp_path / "home" / "skdistill_data"
    assert get_data_home("~/x") == tmp_path / "home" / "x"


def test_loaders_follow_env_var(monkeypatch):
    require_file("heloc/heloc_dataset_v1.csv")
    real = data_home()
    monkeypatch.setenv("SKDISTILL_DATA", str(real))
    assert load_heloc().data.shape == (10459, 23)
    monkeypatch.setenv("SKDISTILL_DATA", "/nonexistent/skdistill")
    with pytest.raises(DataFileNotFoundError, match="/nonexistent/skdistill/heloc"):
        load_heloc()
    # An explicit data_home wins over the environment.
    assert load_heloc(data_home=real).data.shape == (10459, 23)


@pytest.mark.parametrize("dataset, name", [
    ("heloc", "heloc_dataset_v1.csv"),
    ("adult", "adult.data.gz"),
    ("adult", "adult.test.gz"),
    ("mnist", "t10k-images-idx3-ubyte.gz"),
    ("mnist", "t10k-labels-idx1-ubyte.gz"),
    ("mnist", "train-labels-idx1-ubyte.gz"),
])
def test_shared_files_match_pinned_checksums(dataset, name):
    path = require_file(f"{dataset}/{name}")
    readme = {
        "heloc_dataset_v1.csv": "e5a914f742ad7f8472c5417902ec06b321ebc5de1d68ec13f136d62c87a7fbf3",
        "adult.data.gz": "fb986d3609cdf068a1c234ed2695603b74c66c4be723467d9d69542024847442",
        "adult.test.gz": "74aa81a0e0880467a50de97be6ba8130df14a3ef8c0c3a14de2a9a997d068fbf",
    }
    if dataset == "adult":
        # UCI serves adult.data uncompressed: the pinned checksum is of the decompressed file.
        assert _sha256(path) == readme[name]
        digest = hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest()
        assert _base.CHECKSUMS[("adult", name[:-3])] == f"sha256:{digest}"
    elif dataset == "heloc":
        assert _sha256(path) == readme[name]
    else:
        assert _base.CHECKSUMS[(dataset, name)] == f"sha256:{_sha256(path)}"


# --- HELOC ----------------------------------------------------------------------------------

def test_heloc_shapes_and_class_counts():
    require_file("heloc/heloc_dataset_v1.csv")
    heloc = load_heloc(data_home=data_home())
    assert heloc.data.shape == (10459, 23) and heloc.data.dtype == np.float64
    assert np.bincount(heloc.target).tolist() == [5000, 5459]
    assert list(heloc.target_names) == ["Good", "Bad"]
    assert heloc.feature_names[0] == "ExternalRiskEstimate"
    assert heloc.feature_names[-1] == "PercentTradesWBalance"
    assert "RiskPerformance" not in heloc.feature_names
    assert (heloc.data == -9).all(axis=1).sum() == 588
    assert heloc.frame is None and "FICO" in heloc.DESCR


def test_heloc_as_frame_and_return_X_y():
    require_file("heloc/heloc_dataset_v1.csv")
    X, y = load_heloc(data_home=data_home(), return_X_y=True)
    framed = load_heloc(data_home=data_home(), as_frame=True)
    assert isinstance(framed.data, pd.DataFrame) and isinstance(framed.target, pd.Series)
    assert framed.frame.shape == (10459, 24)
    assert framed.frame.columns[-1] == "RiskPerformance"
    np.testing.assert_array_equal(framed.data.to_numpy(), X)
    np.testing.assert_array_equal(framed.target.to_numpy(), y)


def test_heloc_download_is_refused_with_instructions(tmp_path):
    with pytest.raises(DataFileNotFoundError, match="no public download") as info:
        load_heloc(data_home=tmp_path, download_if_missing=True)
    assert str(tmp_path / "heloc") in str(info.value) and "FICO" in str(info.value)


# --- Adult ----------------------------------------------------------------------------------

def test_adult_official_split_sizes_labels_and_missing():
    require_file("adult/adult.data.gz")
    require_file("adult/adult.test.gz")
    train = load_adult(subset="train", data_home=data_home())
    test = load_adult(subset="test", data_home=data_home())
    assert train.data.shape == (32561, 14) and test.data.shape == (16281, 14)
    assert np.bincount(train.target).tolist() == [24720, 7841]
    assert np.bincount(test.target).tolist() == [12435, 3846]  # labels "<=50K." read as "<=50K"
    assert np.isnan(train.data).any(axis=1).sum() == 2399
    assert np.isnan(test.data).any(axis=1).sum() == 1221
    assert not train.is_test.any() and test.is_test.all()
    # The "|1x3 Cross validator" line is skipped: the first test row is the file's first record.
    assert test.data[0, train.feature_names.index("age")] == 25
    assert test.data[0, train.feature_names.index("fnlwgt")] == 226802


def test_adult_all_is_train_then_test_with_is_test_marker():
    require_file("adult/adult.data.gz")
    require_file("adult/adult.test.gz")
    everything = load_adult(data_home=data_home())
    train = load_adult(subset="train", data_home=data_home())
    assert everything.data.shape == (48842, 14)
    assert everything.is_test.sum() == 16281 and not everything.is_test[:32561].any()
    np.testing.assert_array_equal(everything.data[~everything.is_test], train.data)
    np.testing.assert_array_equal(everything.target[~everything.is_test], train.target)


def test_adult_category_codes_agree_between_splits_and_frame():
    require_file("adult/adult.data.gz")
    require_file("adult/adult.test.gz")
    arrays = load_adult(subset="test", data_home=data_home())
    framed = load_adult(subset="test", data_home=data_home(), as_frame=True)
    assert framed.frame.shape == (16281, 15)
    for column, categories in arrays.categories.items():
        assert framed.data[column].dtype == "category"
        assert list(framed.data[column].cat.categories) == categories
        codes = arrays.data[:, arrays.feature_names.index(column)]
        labels = framed.data[column].to_numpy()
        present = ~np.isnan(codes)
        assert (np.asarray(categories, dtype=object)[codes[present].astype(int)]
                == labels[present]).all()
    assert framed.data["native-country"].isna().sum() == 274
    assert framed.data["age"].dtype == np.int64


def test_adult_reads_uncompressed_uci_files(tmp_path):
    for name in ("adult.data.gz", "adult.test.gz"):
        source = require_file(f"adult/{name}")
        (tmp_path / "adult").mkdir(exist_ok=True)
        (tmp_path / "adult" / name[:-3]).write_bytes(gzip.decompress(source.read_bytes()))
    X, y = load_adult(data_home=tmp_path, return_X_y=True)
    X_ref, y_ref = load_adult(data_home=data_home(), return_X_y=True)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


# --- MAGIC and HIGGS (no copies in shared/data: small files in the official formats) ------------

def test_magic_parses_uci_format(tmp_path):
    (tmp_path / "magic").mkdir()
    (tmp_path / "magic" / "magic04.data").write_text(
        "28.7967,16.0021,2.6449,0.3918,0.1982,27.7004,22.011,-8.2027,40.092,81.8828,g\n"
        "31.6036,11.7235,2.5185,0.5303,0.3773,26.2722,23.8238,-9.9574,6.3609,205.261,g\n"
        "162.052,136.031,4.0612,0.0374,0.0187,116.741,-64.858,-45.216,76.96,256.788,h\n"
    )
    magic = load_magic(data_home=tmp_path)
    assert magic.data.shape == (3, 10)
    assert magic.target.tolist() == [0, 0, 1] and list(magic.target_names) == ["g", "h"]
    assert magic.feature_names[0] == "fLength" and magic.feature_names[-1] == "fDist"
    assert magic.data[2, -1] == pytest.approx(256.788)
    assert load_magic(data_home=tmp_path, as_frame=True).frame.shape == (3, 11)


def test_magic_unknown_class_is_an_error(tmp_path):
    (tmp_path / "magic").mkdir()
    (tmp_path / "magic" / "magic04.data").write_text("1,2,3,4,5,6,7,8,9,10,x\n")
    with pytest.raises(ValueError, match="load_magic.*'x'"):
        load_magic(data_home=tmp_path)


def test_higgs_reads_label_first_and_n_rows(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.column_stack([[1.0, 0.0, 1.0, 0.0], rng.normal(size=(4, 28))])
    (tmp_path / "higgs").mkdir()
    text = "\n".join(",".join(f"{v:.18e}" for v in row) for row in rows) + "\n"
    (tmp_path / "higgs" / "HIGGS.csv.gz").write_bytes(gzip.compress(text.encode()))
    X, y = load_higgs(data_home=tmp_path, n_rows=3, return_X_y=True)
    assert X.shape == (3, 28) and X.dtype == np.float32
    assert y.tolist() == [1, 0, 1]
    np.testing.assert_allclose(X, rows[:3, 1:].astype(np.float32))
    higgs = load_higgs(data_home=tmp_path)
    assert higgs.data.shape == (4, 28) and higgs.feature_names[-1] == "m_wwbb"
    assert len(higgs.feature_names) == 28


# --- MNIST and Fashion-MNIST ----------------------------------------------------------------

def test_mnist_test_split_shapes_scaling_and_class_counts():
    require_file("mnist/t10k-images-idx3-ubyte.gz")
    require_file("mnist/t10k-labels-idx1-ubyte.gz")
    mnist = load_mnist(subset="test", data_home=data_home())
    assert mnist.data.shape == (10000, 784) and mnist.data.dtype == np.float32
    assert mnist.images.shape == (10000, 28, 28)
    np.testing.assert_array_equal(mnist.images.reshape(10000, 784), mnist.data)
    assert mnist.data.min() == 0 and mnist.data.max() == 1
    np.testing.assert_allclose(mnist.data * 255, np.round(mnist.data * 255), atol=1e-4)
    assert np.bincount(mnist.target).tolist() == MNIST_TEST_COUNTS
    assert mnist.is_test.all() and list(mnist.target_names) == list(range(10))
    # The first test image is a 7 whose strokes stay away from the border.
    assert mnist.target[0] == 7 and mnist.images[0, :4].max() == 0


def test_mnist_return_X_y_and_as_frame():
    require_file("mnist/t10k-images-idx3-ubyte.gz")
    require_file("mnist/t10k-labels-idx1-ubyte.gz")
    X, y = load_mnist(subset="test", data_home=data_home(), return_X_y=True)
    framed = load_mnist(subset="test", data_home=data_home(), as_frame=True)
    assert X.shape == (10000, 784) and y.shape == (10000,)
    assert framed.frame.shape == (10000, 785) and framed.frame.columns[-1] == "label"
    np.testing.assert_array_equal(framed.data.to_numpy(), X)


def test_mnist_train_images_missing_says_where_and_how():
    require_file("mnist/train-labels-idx1-ubyte.gz")
    with pytest.raises(DataFileNotFoundError) as info:
        load_mnist(subset="train", data_home=data_home())
    message = str(info.value)
    assert "load_mnist" in message and "train-images-idx3-ubyte.gz" in message
    assert str(data_home() / "mnist") in message
    assert "download_if_missing=True" in message
    assert "https://ossci-datasets.s3.amazonaws.com/mnist/train-images-idx3-ubyte.gz" in message
    assert isinstance(info.value, FileNotFoundError)


def test_fashion_mnist_full_splits_from_the_data_folder(monkeypatch):
    for name in FASHION_IDX_SHA256:
        require_file(f"fashion-mnist/{name}")
    monkeypatch.setenv("SKDISTILL_SYSTEM_DATA", "0")  # the data folder's copy, never the OS's
    fashion = load_fashion_mnist(subset="test", data_home=data_home())
    assert fashion.data.shape == (10000, 784) and fashion.images.shape == (10000, 28, 28)
    assert np.bincount(fashion.target).tolist() == [1000] * 10
    assert fashion.target_names[9] == "Ankle boot"
    labels = load_fashion_mnist(subset="train", data_home=data_home()).target
    assert np.bincount(labels).tolist() == [6000] * 10


@pytest.mark.parametrize("name", sorted(FASHION_IDX_SHA256))
def test_shared_fashion_mnist_holds_zalandos_idx_content(name):
    path = require_file(f"fashion-mnist/{name}")
    assert hashlib.sha256(gzip.decompress(path.read_bytes())).hexdigest() == \
        FASHION_IDX_SHA256[name]


@pytest.mark.parametrize("off", ["0", "false", "No", " OFF "])
def test_system_folders_are_searched_unless_switched_off(monkeypatch, tmp_path, off):
    system = tmp_path / "system"
    images = _write_idx_test_split(system, [3, 9, 0], gzipped=True)
    monkeypatch.setitem(_base.SYSTEM_FOLDERS, "fashion-mnist", [system])
    monkeypatch.delenv("SKDISTILL_SYSTEM_DATA", raising=False)
    home = tmp_path / "home"  # empty: only the system folder has the files
    fashion = load_fashion_mnist(subset="test", data_home=home)
    assert fashion.target.tolist() == [3, 9, 0]
    np.testing.assert_allclose(fashion.images * 255, images, atol=1e-4)
    monkeypatch.setenv("SKDISTILL_SYSTEM_DATA", "1")
    assert load_fashion_mnist(subset="test", data_home=home).target.tolist() == [3, 9, 0]

    monkeypatch.setenv("SKDISTILL_SYSTEM_DATA", off)
    with pytest.raises(DataFileNotFoundError) as info:
        load_fashion_mnist(subset="test", data_home=home)
    message = str(info.value)
    assert str(home / "fashion-mnist") in message
    assert str(system) not in message and "SKDISTILL_SYSTEM_DATA" in message
    # The data folder is still read with the system folders off.
    _write_idx_test_split(home / "fashion-mnist", [5])
    assert load_fashion_mnist(subset="test", data_home=home).target.tolist() == [5]


def test_bad_system_data_variable_names_variable_value_and_valid_values(monkeypatch, tmp_path):
    monkeypatch.setenv("SKDISTILL_SYSTEM_DATA", "O")
    with pytest.raises(ValueError, match=r"SKDISTILL_SYSTEM_DATA.*0 \(or false.*got 'O'"):
        load_fashion_mnist(subset="test", data_home=tmp_path)


def test_fashion_mnist_missing_mentions_every_folder_and_apt(monkeypatch, tmp_path):
    monkeypatch.setitem(_base.SYSTEM_FOLDERS, "fashion-mnist", [tmp_path / "system"])
    monkeypatch.delenv("SKDISTILL_SYSTEM_DATA", raising=False)
    with pytest.raises(DataFileNotFoundError) as info:
        load_fashion_mnist(subset="test", data_home=tmp_path / "home")
    message = str(info.value)
    assert str(tmp_path / "home" / "fashion-mnist") in message
    assert str(tmp_path / "system") in message
    assert "apt-get install dataset-fashion-mnist" in message


def test_fashion_mnist_reads_ungzipped_files(monkeypatch, tmp_path):
    monkeypatch.setitem(_base.SYSTEM_FOLDERS, "fashion-mnist", [])
    images = _write_idx_test_split(tmp_path / "fashion-mnist", [3, 9])
    fashion = load_fashion_mnist(subset="test", data_home=tmp_path)
    np.testing.assert_allclose(fashion.images * 255, images, atol=1e-4)
    assert fashion.target.tolist() == [3, 9]


# --- downloads, served from a local http.server ----------------------------------------------

class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def local_server(tmp_path, monkeypatch):
    """A folder served over HTTP on 127.0.0.1, and its base URL."""
    for variable in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "served"
    root.mkdir()
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_download_mnist_from_server_is_verified_and_loadable(local_server, tmp_path,
                                                              monkeypatch):
    root, url = local_server
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(require_file(f"mnist/{name}"), root / name)
    monkeypatch.setitem(_base.BASE_URLS, "mnist", url)
    home = tmp_path / "home"
    with pytest.raises(DataFileNotFoundError):  # download_if_missing is False by default
        load_mnist(subset="test", data_home=home)
    mnist = load_mnist(subset="test", data_home=home, download_if_missing=True)
    assert np.bincount(mnist.target).tolist() == MNIST_TEST_COUNTS
    assert sorted(p.name for p in (home / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]  # no temporary files left
    assert _sha256(home / "mnist" / "t10k-images-idx3-ubyte.gz") == _sha256(
        data_home() / "mnist" / "t10k-images-idx3-ubyte.gz")


def test_download_adult_saves_uci_names(local_server, tmp_path, monkeypatch):
    root, url = local_server
    for name in ("adult.data", "adult.test"):
        source = require_file(f"adult/{name}.gz")
        (root / name).write_bytes(gzip.decompress(source.read_bytes()))
    monkeypatch.setitem(_base.BASE_URLS, "adult", url)
    y = load_adult(data_home=tmp_path, download_if_missing=True, return_X_y=True)[1]
    assert y.shape == (48842,)
    assert sorted(p.name for p in (tmp_path / "adult").iterdir()) == ["adult.data", "adult.test"]


def test_download_checksum_mismatch_deletes_file_and_raises(local_server, tmp_path,
                                                            monkeypatch):
    root, url = local_server
    good = require_file("mnist/t10k-labels-idx1-ubyte.gz").read_bytes()
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    shutil.copy(require_file("mnist/t10k-images-idx3-ubyte.gz"), root)
    monkeypatch.setitem(_base.BASE_URLS, "mnist", url)
    with pytest.raises(ChecksumError, match="t10k-labels-idx1-ubyte.gz.*mismatch"):
        load_mnist(subset="test", data_home=tmp_path, download_if_missing=True)
    assert [p.name for p in (tmp_path / "mnist").iterdir()] == ["t10k-images-idx3-ubyte.gz"]


def test_download_failure_is_an_oserror_naming_the_url(local_server, tmp_path, monkeypatch):
    _, url = local_server  # serves an empty folder: 404
    monkeypatch.setitem(_base.BASE_URLS, "magic", url)
    with pytest.raises(OSError, match="magic04.data"):
        load_magic(data_home=tmp_path, download_if_missing=True)
    assert list((tmp_path / "magic").iterdir()) == []


# --- argument checks ------------------------------------------------------------------------

@pytest.mark.parametrize("call, error, pattern", [
    (lambda: load_adult(subset="validation"), ValueError, "load_adult.*subset.*'validation'"),
    (lambda: load_mnist(subset="val"), ValueError, "load_mnist.*subset.*'val'"),
    (lambda: load_heloc(as_frame="yes"), TypeError, "load_heloc.*as_frame.*'yes'"),
    (lambda: load_magic(data_home=3), TypeError, "load_magic.*data_home.*3"),
    (lambda: load_higgs(n_rows=0), ValueError, "load_higgs.*n_rows.*0"),
    (lambda: load_higgs(n_rows=2.5), TypeError, "load_higgs.*n_rows.*2.5"),
    (lambda: load_fashion_mnist(return_X_y=None), TypeError,
     "load_fashion_mnist.*return_X_y.*None"),
])
def test_bad_loader_arguments_name_function_parameter_and_value(call, error, pattern):
    with pytest.raises(error, match=pattern):
        call()


# --- occlude --------------------------------------------------------------------------------

def _assert_one_square_per_image(zeros, mask_size):
    for image in zeros:
        rows, cols = np.nonzero(image)
        assert len(rows) == mask_size**2
        assert rows.max() - rows.min() == cols.max() - cols.min() == mask_size - 1


def test_occlude_zeroes_exactly_one_square_per_image():
    X = np.ones((50, 28, 28), dtype=np.float32)
    out = occlude(X, mask_size=10, random_state=0)
    assert out.shape == X.shape and out.dtype == X.dtype
    assert (X == 1).all()  # the input is left alone
    _assert_one_square_per_image(out == 0, 10)
    assert len({tuple(np.argwhere(img == 0)[0]) for img in out}) > 1  # positions differ


def test_occlude_channels_share_the_square_and_flat_images_work():
    X = np.ones((20, 3, 8, 8))
    out = occlude(X, mask_size=3, random_state=1)
    assert out.shape == X.shape
    assert (out == out[:, :1]).all()
    _assert_one_square_per_image(out[:, 0] == 0, 3)
    flat = occlude(np.ones((20, 64)), mask_size=3, random_state=1)
    assert flat.shape == (20, 64)
    _assert_one_square_per_image(flat.reshape(20, 8, 8) == 0, 3)
    np.testing.assert_array_equal(flat.reshape(20, 8, 8), out[:, 0])


def test_occlude_places_squares_uniformly_including_the_borders():
    out = occlude(np.ones((4500, 3, 3)), mask_size=2, random_state=0)
    corners = np.stack([out[:, 0, 0], out[:, 0, 2], out[:, 2, 0], out[:, 2, 2]]) == 0
    # Each of the 4 positions covers exactly one corner: each is hit about 1/4 of the time.
    assert (corners.sum(axis=0) == 1).all()
    np.testing.assert_allclose(corners.mean(axis=1), 0.25, atol=0.03)


def test_occlude_edge_sizes_and_reproducibility():
    X = np.random.default_rng(0).random((5, 6, 6))
    unchanged = occlude(X, mask_size=0)
    np.testing.assert_array_equal(unchanged, X)
    assert unchanged is not X
    assert (occlude(X, mask_size=6) == 0).all()
    np.testing.assert_array_equal(occlude(X, 3, random_state=7), occlude(X, 3, random_state=7))


@pytest.mark.parametrize("X, mask_size, error, pattern", [
    (np.ones((2, 6, 6)), -1, ValueError, "occlude.*mask_size.*-1"),
    (np.ones((2, 6, 6)), 7, ValueError, "occlude.*mask_size.*7"),
    (np.ones((2, 6, 6)), 2.0, TypeError, "occlude.*mask_size.*2.0"),
    (np.ones((2, 50)), 2, ValueError, "occlude.*50"),
    (np.ones(5), 1, ValueError, "occlude.*shape"),
])
def test_occlude_rejects_bad_arguments(X, mask_size, error, pattern):
    with pytest.raises(error, match=pattern):
        occlude(X, mask_size)


# --- make_gaussian_mixture ------------------------------------------------------------------

def test_gaussian_mixture_shapes_and_posterior_rows_sum_to_one():
    X, y, proba = make_gaussian_mixture(n_samples=300, n_classes=4, n_features=5,
                                        random_state=0)
    assert X.shape == (300, 5) and y.shape == (300,) and proba.shape == (300, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-12)
    assert set(np.unique(y)) <= set(range(4))
    again = make_gaussian_mixture(n_samples=300, n_classes=4, n_features=5, random_state=0)
    np.testing.assert_array_equal(again[0], X)


@pytest.mark.parametrize("covariance", ["shared", "per_class"])
def test_gaussian_mixture_posterior_is_calibrated_and_bayes_accurate(covariance):
    X, y, proba = make_gaussian_mixture(n_samples=40000, n_classes=3, n_features=3,
                                        covariance=covariance, random_state=0)
    # The Bayes rule's accuracy is E[max_k p(k|x)]; argmax of the true posterior attains it.
    accuracy = (proba.argmax(axis=1) == y).mean()
    assert accuracy == pytest.approx(proba.max(axis=1).mean(), abs=0.01)
    # Calibration: among points given p(k|x) in a bin, the frequency of class k matches.
    for k in range(3):
        bins = np.digitize(proba[:, k], np.linspace(0, 1, 6)[1:-1])
        for b in range(5):
            members = bins == b
            if members.sum() > 500:
                assert (y[members] == k).mean() == pytest.approx(
                    proba[members, k].mean(), abs=0.03)


def test_gaussian_mixture_weights_and_params():
    X, y, proba, params = make_gaussian_mixture(
        n_samples=20000, n_classes=3, weights=[0.6, 0.3, 0.1], class_sep=3.0, random_state=2,
        return_params=True)
    np.testing.assert_allclose(np.bincount(y) / len(y), [0.6, 0.3, 0.1], atol=0.015)
    assert params.means.shape == (3, 2) and params.covariances.shape == (3, 2, 2)
    np.testing.assert_allclose(params.covariances[0], params.covariances[2])  # shared
    for k in range(3):
        np.testing.assert_allclose(X[y == k].mean(axis=0), params.means[k], atol=0.1)


def test_logistic_regression_approaches_shared_covariance_posterior():
    X, y, proba = make_gaussian_mixture(n_samples=30000, n_classes=3, n_features=4,
                                        random_state=3)
    model = LogisticRegression(C=1e4, max_iter=1000).fit(X[:20000], y[:20000])
    error = np.abs(model.predict_proba(X[20000:]) - proba[20000:])
    assert error.mean() < 0.01


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"n_samples": 0}, ValueError, "make_gaussian_mixture.*n_samples.*0"),
    ({"n_classes": 1}, ValueError, "make_gaussian_mixture.*n_classes.*1"),
    ({"n_features": 1.5}, TypeError, "make_gaussian_mixture.*n_features.*1.5"),
    ({"class_sep": -1.0}, ValueError, "make_gaussian_mixture.*class_sep.*-1.0"),
    ({"scale": "big"}, TypeError, "make_gaussian_mixture.*scale.*'big'"),
    ({"weights": [0.5, 0.6]}, ValueError, r"make_gaussian_mixture.*weights.*\[0.5, 0.6\]"),
    ({"weights": [1.0]}, ValueError, "make_gaussian_mixture.*weights"),
    ({"covariance": "full"}, ValueError, "make_gaussian_mixture.*covariance.*'full'"),
])
def test_gaussian_mixture_rejects_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        make_gaussian_mixture(**kwargs)
