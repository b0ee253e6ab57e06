"""The catalogue of bad inputs: each raises the right exception, names the parameter, and changes nothing.

Every case gets a fresh context (classifier, data, an empty folder); after the call raised, the test checks
that the classifier's weights, the user's arrays and the folder are exactly as before.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from art.attacks.evasion import ProjectedGradientDescent
from art.data_generators import DataGenerator
from art.estimators.classification import PyTorchClassifier, SklearnClassifier
from captum.attr import Saliency
from sklearn.linear_model import LogisticRegression

from art_sgt import SaliencyGuidedAdversarialTrainer, SaliencyGuidedTrainer, apply_mask, least_salient_mask
from art_sgt.attacks import pgd
from art_sgt.cli import main as cli_main
from art_sgt.datasets import load_cifar10, load_mnist
from art_sgt.saliency import make_saliency_fn
from tests.conftest import make_classifier, make_task


class Ctx:
    def __init__(self, tmp_path):
        self.classifier = make_classifier()
        self.x, self.y = make_task(n=32)
        self.dir = tmp_path / "out"
        self.dir.mkdir()
        self.tmp = tmp_path

    def sgt(self, **kwargs):
        return SaliencyGuidedTrainer(self.classifier, **kwargs)

    def fit(self, x=None, y=None, **kwargs):
        x = self.x if x is None else x
        y = self.y if y is None else y
        self.sgt().fit(x, y, **{"nb_epochs": 1, "verbose": False, **kwargs})

    def pgd_attack(self, classifier=None, **kwargs):
        params = {"eps": 0.1, "eps_step": 0.02, "max_iter": 2, "verbose": False, **kwargs}
        return ProjectedGradientDescent(classifier or self.classifier, **params)

    def asgt(self, attack=None, **kwargs):
        return SaliencyGuidedAdversarialTrainer(self.classifier, attack or self.pgd_attack(), **kwargs)


def _channels_last():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 8 * 1, 4))
    return PyTorchClassifier(
        model,
        torch.nn.CrossEntropyLoss(),
        input_shape=(8, 8, 1),
        nb_classes=4,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        channels_first=False,
    )


def _mixup():
    from art.defences.preprocessor import MixupPyTorch

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
    return PyTorchClassifier(
        model,
        torch.nn.CrossEntropyLoss(),
        input_shape=(1, 8, 8),
        nb_classes=4,
        clip_values=(0.0, 1.0),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
        preprocessing_defences=[MixupPyTorch(num_classes=4)],
    )


def _unreduced_loss():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 4))
    return PyTorchClassifier(
        model,
        torch.nn.CrossEntropyLoss(reduction="none"),
        input_shape=(1, 8, 8),
        nb_classes=4,
        clip_values=(0.0, 1.0),
        optimizer=torch.optim.SGD(model.parameters(), lr=0.1),
    )


def _unwritable_checkpoint_dir(c):
    (c.dir / "file.txt").write_text("a file, not a folder")
    return lambda: c.fit(checkpoint_dir=c.dir / "file.txt" / "sub")


class _SizelessGenerator(DataGenerator):
    def __init__(self, c):
        super().__init__(size=None, batch_size=8)
        self.c = c

    def get_batch(self):
        return self.c.x[:8], self.c.y[:8]


class _Generator(DataGenerator):
    def __init__(self, x, y):
        super().__init__(size=len(x), batch_size=8)
        self.x, self.y = x, y

    def get_batch(self):
        return self.x[:8], self.y[:8]


def _all_zero_rows(y, classes=4):
    one_hot = np.eye(classes, dtype=np.float32)[y]
    one_hot[3] = 0.0
    return one_hot


def _multi_hot_rows(y, classes=4):
    one_hot = np.eye(classes, dtype=np.float32)[y]
    one_hot[5, :2] = 1.0
    return one_hot


def _evaluate(c, y):
    from art_sgt.evaluation import SaliencyEvaluator

    return SaliencyEvaluator(c.classifier, ["saliency"], ["sparseness"]).evaluate(c.x, y)


def _with_nan(x):
    x = x.copy()
    x[0, 0, 0, 0] = np.nan
    return x


def _corrupt_checkpoint(c):
    (c.dir / "checkpoint.pt").write_bytes(b"\x00garbage")
    return lambda: c.fit(checkpoint_dir=c.dir, resume=True)


def _corrupt_npz(c):
    (c.dir / "mnist.npz").write_bytes(b"not a zip file")
    return lambda: load_mnist(c.dir, download=False)


T = torch.zeros(2, 1, 4, 4)
CASES = [
    # SGT trainer construction
    ("mask_fraction zero", lambda c: lambda: c.sgt(mask_fraction=0.0), ValueError, "mask_fraction"),
    ("mask_fraction one", lambda c: lambda: c.sgt(mask_fraction=1.0), ValueError, "mask_fraction"),
    ("mask_fraction negative", lambda c: lambda: c.sgt(mask_fraction=-0.2), ValueError, "mask_fraction"),
    ("mask_fraction string", lambda c: lambda: c.sgt(mask_fraction="half"), TypeError, "mask_fraction"),
    ("kl_weight negative", lambda c: lambda: c.sgt(kl_weight=-1.0), ValueError, "kl_weight"),
    ("kl_weight nan", lambda c: lambda: c.sgt(kl_weight=float("nan")), ValueError, "kl_weight"),
    ("kl_weight inf", lambda c: lambda: c.sgt(kl_weight=float("inf")), ValueError, "kl_weight"),
    ("unknown fill", lambda c: lambda: c.sgt(fill="median"), ValueError, "fill"),
    ("fill of wrong type", lambda c: lambda: c.sgt(fill=[0.0]), TypeError, "fill"),
    ("fill nan", lambda c: lambda: c.sgt(fill=float("nan")), ValueError, "fill"),
    ("unknown saliency", lambda c: lambda: c.sgt(saliency="smoothgrad9"), ValueError, "saliency"),
    ("saliency of wrong type", lambda c: lambda: c.sgt(saliency=3), TypeError, "saliency"),
    ("absolute not bool", lambda c: lambda: c.sgt(absolute="yes"), TypeError, "absolute"),
    (
        "non-PyTorch estimator",
        lambda c: lambda: SaliencyGuidedTrainer(SklearnClassifier(LogisticRegression())),
        TypeError,
        "classifier",
    ),
    ("plain torch module", lambda c: lambda: SaliencyGuidedTrainer(c.classifier.model), TypeError, "classifier"),
    (
        "classifier without optimizer",
        lambda c: lambda: SaliencyGuidedTrainer(make_classifier(optimizer=None)),
        ValueError,
        "optimizer",
    ),  # noqa: E501
    # fit arguments
    ("len(x) != len(y)", lambda c: lambda: c.fit(y=c.y[:-1]), ValueError, "x and y"),
    ("nan in x", lambda c: lambda: c.fit(x=_with_nan(c.x)), ValueError, "x must hold only finite"),
    ("labels out of range", lambda c: lambda: c.fit(y=c.y + 4), ValueError, "y must hold class indices"),
    ("negative labels", lambda c: lambda: c.fit(y=c.y - 5), ValueError, "y must hold class indices"),
    ("fractional labels", lambda c: lambda: c.fit(y=c.y + 0.5), ValueError, "y must hold integer"),
    ("one-hot of wrong width", lambda c: lambda: c.fit(y=np.eye(3)[c.y % 3]), ValueError, "y must be index labels"),
    ("one-hot row all zero", lambda c: lambda: c.fit(y=_all_zero_rows(c.y)), ValueError, "y must be one-hot"),
    ("multi-hot row", lambda c: lambda: c.fit(y=_multi_hot_rows(c.y)), ValueError, "y must be one-hot.*row 5"),
    (
        "multi-hot row from a generator",
        lambda c: lambda: c.sgt().fit_generator(_Generator(c.x, _multi_hot_rows(c.y)), nb_epochs=1, verbose=False),
        ValueError,
        "generator batch y must be one-hot",
    ),
    ("one-hot row all zero, evaluator", lambda c: lambda: _evaluate(c, _all_zero_rows(c.y)), ValueError, "y must be"),
    ("multi-hot row, evaluator", lambda c: lambda: _evaluate(c, _multi_hot_rows(c.y)), ValueError, "y must be"),
    (
        "saliency returning numpy",
        lambda c: (
            lambda: c.sgt(saliency=lambda m, x, t: x.detach().cpu().numpy()).fit(c.x, c.y, nb_epochs=1, verbose=False)
        ),
        TypeError,
        "saliency must return a torch.Tensor of the input's shape",
    ),
    ("batch_size zero", lambda c: lambda: c.fit(batch_size=0), ValueError, "batch_size"),
    ("batch_size float", lambda c: lambda: c.fit(batch_size=12.5), TypeError, "batch_size"),
    ("nb_epochs zero", lambda c: lambda: c.fit(nb_epochs=0), ValueError, "nb_epochs"),
    ("wrong channel count", lambda c: lambda: c.fit(x=np.repeat(c.x, 3, axis=1)), ValueError, "x must have shape"),
    ("channels-last x", lambda c: lambda: c.fit(x=c.x.transpose(0, 2, 3, 1).copy()), ValueError, "x must have shape"),  # noqa: E501
    ("empty x", lambda c: lambda: c.fit(x=c.x[:0], y=c.y[:0]), ValueError, "x must not be empty"),
    ("x as a list", lambda c: lambda: c.fit(x=c.x.tolist()), TypeError, "x must be a numpy.ndarray"),
    ("x of strings", lambda c: lambda: c.fit(x=c.x.astype(str)), TypeError, "x must have a numeric dtype"),
    ("x outside clip_values", lambda c: lambda: c.fit(x=c.x * 255), ValueError, "clip_values"),
    ("unknown fit keyword", lambda c: lambda: c.fit(epochs=3), TypeError, "epochs"),
    ("negative seed", lambda c: lambda: c.fit(seed=-1), TypeError, "seed"),
    ("validation_data not a pair", lambda c: lambda: c.fit(validation_data=c.x), TypeError, "validation_data"),
    (
        "validation labels out of range",
        lambda c: lambda: c.fit(validation_data=(c.x, c.y + 9)),
        ValueError,
        "validation_data\\[1\\]",
    ),  # noqa: E501
    (
        "scheduler on another optimizer",
        lambda c: (
            lambda: c.fit(
                scheduler=torch.optim.lr_scheduler.StepLR(
                    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1), 1
                )
            )
        ),
        ValueError,
        "scheduler",
    ),  # noqa: E501
    ("resume without checkpoint_dir", lambda c: lambda: c.fit(resume=True), ValueError, "checkpoint_dir"),
    (
        "resume from empty folder",
        lambda c: lambda: c.fit(checkpoint_dir=c.dir, resume=True),
        FileNotFoundError,
        "checkpoint_dir",
    ),  # noqa: E501
    ("corrupted checkpoint", _corrupt_checkpoint, ValueError, "checkpoint_dir"),
    (
        "checkpoint_every zero",
        lambda c: lambda: c.fit(checkpoint_dir=c.dir, checkpoint_every=0),
        ValueError,
        "checkpoint_every",
    ),  # noqa: E501
    ("fit_generator with arrays", lambda c: lambda: c.sgt().fit_generator((c.x, c.y)), TypeError, "generator"),
    # ASGT trainer
    ("attack missing", lambda c: lambda: SaliencyGuidedAdversarialTrainer(c.classifier, None), TypeError, "attack"),
    (
        "attack on another model",
        lambda c: lambda: c.asgt(c.pgd_attack(make_classifier())),
        ValueError,
        "takes its gradients from another model",
    ),  # noqa: E501
    (
        "targeted attack",
        lambda c: lambda: c.asgt(c.pgd_attack(targeted=True)).fit(c.x, c.y),
        NotImplementedError,
        "targeted",
    ),  # noqa: E501
    ("ratio above one", lambda c: lambda: c.asgt(ratio=1.5), ValueError, "ratio"),
    (
        "attack and attacks both",
        lambda c: lambda: SaliencyGuidedAdversarialTrainer(c.classifier, c.pgd_attack(), attack=c.pgd_attack()),
        TypeError,
        "both",
    ),  # noqa: E501
    ("unknown saliency_of", lambda c: lambda: c.sgt(saliency_of="prob"), ValueError, "saliency_of"),
    ("complex x", lambda c: lambda: c.fit(x=c.x.astype(np.complex64)), TypeError, "real dtype"),
    ("scheduler without step", lambda c: lambda: c.fit(scheduler=object()), TypeError, "step"),
    ("drop_last not a bool", lambda c: lambda: c.fit(drop_last="yes"), TypeError, "drop_last"),
    ("checkpoint_dir not writable", _unwritable_checkpoint_dir, ValueError, "checkpoint_dir"),
    (
        "channels-last classifier",
        lambda c: lambda: SaliencyGuidedTrainer(_channels_last()),
        ValueError,
        "channels_first",
    ),  # noqa: E501
    ("label-mixing preprocessor", lambda c: lambda: SaliencyGuidedTrainer(_mixup()), ValueError, "MixupPyTorch"),
    ("per-sample loss", lambda c: lambda: SaliencyGuidedTrainer(_unreduced_loss()), ValueError, "classifier.loss"),
    (
        "captum instance on another model",
        lambda c: lambda: c.sgt(saliency=Saliency(make_classifier().model)),
        ValueError,
        "bound to a model",
    ),  # noqa: E501
    ("generator of unknown size", lambda c: lambda: c.sgt().fit_generator(_SizelessGenerator(c)), ValueError, "size"),  # noqa: E501
    ("unknown saliency_target", lambda c: lambda: c.asgt(saliency_target="max"), ValueError, "saliency_target"),
    # ground floor
    ("mask fraction above one", lambda c: lambda: least_salient_mask(T, 1.2), ValueError, "fraction"),
    (
        "mask of wrong shape",
        lambda c: lambda: apply_mask(T, torch.ones(3, 3, dtype=torch.bool), "zero"),
        ValueError,
        "mask",
    ),  # noqa: E501
    ("saliency fn for bad kwargs", lambda c: lambda: make_saliency_fn("gradient", abs=True), TypeError, "gradient"),
    (
        "pgd negative eps",
        lambda c: lambda: pgd(c.classifier.model, T.repeat(1, 1, 2, 2), torch.zeros(2, dtype=torch.long), -0.1, 0.1, 3),
        ValueError,
        "eps",
    ),  # noqa: E501
    (
        "pgd zero max_iter",
        lambda c: lambda: pgd(c.classifier.model, T.repeat(1, 1, 2, 2), torch.zeros(2, dtype=torch.long), 0.1, 0.1, 0),
        ValueError,
        "max_iter",
    ),  # noqa: E501
    (
        "pgd unknown norm",
        lambda c: (
            lambda: pgd(c.classifier.model, T.repeat(1, 1, 2, 2), torch.zeros(2, dtype=torch.long), 0.1, 0.1, 3, norm=1)
        ),
        ValueError,
        "norm",
    ),  # noqa: E501
    # loaders
    (
        "missing dataset folder",
        lambda c: lambda: load_mnist(c.tmp / "nowhere", download=False),
        FileNotFoundError,
        "data_dir",
    ),  # noqa: E501
    (
        "folder without the file",
        lambda c: lambda: load_cifar10(c.dir, download=False),
        FileNotFoundError,
        "cifar10.npz",
    ),  # noqa: E501
    ("corrupted dataset file", _corrupt_npz, ValueError, "mnist.npz"),
    ("data_dir of wrong type", lambda c: lambda: load_mnist(data_dir=3), TypeError, "data_dir"),
]


@pytest.mark.parametrize(("name", "make", "error", "match"), CASES, ids=[case[0] for case in CASES])
def test_bad_input(tmp_path, name, make, error, match):
    ctx = Ctx(tmp_path)
    call = make(ctx)
    folder_before = sorted(p.name for p in ctx.dir.iterdir())
    weights = [p.detach().clone() for p in ctx.classifier.model.parameters()]
    x, y = ctx.x.copy(), ctx.y.copy()
    with pytest.raises(error, match=match):
        call()
    assert all(torch.equal(a, b) for a, b in zip(weights, ctx.classifier.model.parameters()))
    assert np.array_equal(ctx.x, x) and np.array_equal(ctx.y, y)
    assert sorted(p.name for p in ctx.dir.iterdir()) == folder_before


def test_catalogue_is_large():
    assert len(CASES) >= 40


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--mask-fraction", "1.5"], "--mask-fraction"),
        (["train", "--epochs", "0"], "--epochs"),
        (["train", "--seed", "-1"], "--seed"),
        (["reproduce", "--dataset", "mnist", "--seed", "-3"], "--seed"),
        (["train", "--dataset", "imagenet"], "--dataset"),
        (["train", "--trainer", "trades"], "--trainer"),
        (["evaluate"], "--model"),
        (["evaluate", "--model", "m.pt", "--input-shape", "1,x,28"], "--input-shape"),
        (["evaluate", "--model", "m.pt", "--input-shape", "0,28,28"], "--input-shape"),
        (["evaluate", "--model", "m.pt", "--clip-values", "0,nan"], "--clip-values"),
        (["evaluate", "--model", "m.pt", "--preprocessing", "0.5"], "--preprocessing"),
        (["evaluate", "--model", "m.pt", "--torchscript", "--factory", "a:b"], "not allowed with"),
    ],
)
def test_cli_rejects_bad_arguments(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(argv)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


def test_cli_reports_missing_data_folder(tmp_path, capsys):
    code = cli_main(["train", "--data-dir", str(tmp_path / "none"), "--out", str(tmp_path / "r.json")])
    assert code == 2
    assert "--data-dir" in capsys.readouterr().err
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--trainer", "asgt", "--eps", "5"], "--eps 5 exceeds the data's range"),
        (["train", "--robust-val", "8", "--eps", "1.5"], "--eps 1.5 exceeds the data's range"),
        (["train", "--trainer", "asgt", "--eps-step", "2"], "--eps-step 2 exceeds the data's range"),
        (["evaluate", "--model", "{tmp}/m.pt", "--torchscript"], "does not exist"),
        (["evaluate", "--model", "{tmp}/m.ts", "--torchscript"], "--dataset is needed"),
        (["evaluate", "--model", "{tmp}/m.ts", "--dataset", "mnist"], "it is a TorchScript file"),
        (
            ["evaluate", "--model", "{tmp}/m.ts", "--factory", "tests.test_cli:_user_cnn", "--dataset", "mnist"],
            "not a state_dict",
        ),
        (["evaluate", "--model", "{tmp}/m.ts", "--factory", "nowhere_module:f", "--dataset", "mnist"], "cannot import"),
        (
            ["evaluate", "--model", "{tmp}/m.ts", "--torchscript", "--dataset", "mnist", "--nb-classes", "3"],
            "--nb-classes",
        ),
        (["evaluate", "--model", "{tmp}/m.ts", "--torchscript", "--dataset", "cifar10"], "--input-shape"),
        (["evaluate", "--model", "{tmp}/m.ts", "--input-shape", "1,28,28"], "applies to --torchscript and --factory"),
    ],
)
def test_cli_user_errors_are_one_line(argv, message, tmp_path, capsys, monkeypatch):
    """The command's own refusals: exit 2, one line naming the option, no traceback, nothing written."""
    monkeypatch.setattr("art_sgt.cli._load_data", lambda *a, **k: pytest.fail("loaded data before the check"))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(28 * 28, 10))
    torch.jit.script(model).save(str(tmp_path / "m.ts"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    code = cli_main([*argv, "--out", str(tmp_path / "out" / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert message in err and not (tmp_path / "out").exists()
