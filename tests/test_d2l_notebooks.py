"""Both editions' listings executed as notebooks in a real Jupyter kernel (nbclient + ipykernel), as learners
run the book: no error, nothing on stderr, one figure per drawing cell (updated in place, not stacked), and
no printed value under calls that return nothing in the book."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

IMPORTS = "import torch\nfrom torch import nn\nfrom linearnet import d2l"


def run_cells(cells: list[str], tmp_path) -> list[list[dict]]:
    """Execute ``cells`` in a fresh kernel; the outputs of each cell."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    return [cell.outputs for cell in nb.cells]


def images(outputs: list[dict]) -> int:
    return sum(1 for o in outputs if "data" in o and ({"image/png", "image/svg+xml"} & set(o["data"])))


def check_clean(outputs: list[list[dict]]) -> None:
    for i, cell in enumerate(outputs):
        assert not [o for o in cell if o["output_type"] == "error"], f"cell {i} raised"
        stderr = "".join(o.get("text", "") for o in cell if o.get("name") == "stderr")
        assert stderr == "", f"cell {i} wrote to stderr: {stderr}"


@pytest.mark.slow
def test_chinese_edition_notebook(tmp_path):
    out = run_cells([
        IMPORTS,
        "features, labels = d2l.synthetic_data(torch.tensor([2, -3.4]), 4.2, 1000)\n"
        "d2l.set_figsize()\n"
        "d2l.plt.scatter(d2l.numpy(features[:, 1]), d2l.numpy(labels), 1);",
        "train_iter, test_iter = d2l.load_data_fashion_mnist(256)\n"
        "net = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))\n"
        "loss = nn.CrossEntropyLoss(reduction='none')\n"
        "trainer = torch.optim.SGD(net.parameters(), lr=0.1)\n"
        "d2l.train_ch3(net, train_iter, test_iter, loss, 10, trainer)",
        "d2l.predict_ch3(net, test_iter)",
        "len(d2l.train_ch3.history)",
    ], tmp_path)
    check_clean(out)
    assert images(out[0]) == 0 and images(out[1]) == 1
    for cell in (out[2], out[3]):  # one figure, and no value printed under it
        assert images(cell) == 1 and not [o for o in cell if o["output_type"] == "execute_result"]
    assert out[4][0]["data"]["text/plain"] == "10"
    assert not (tmp_path / "d2l_figures").exists()  # in Jupyter the figures are inline only


@pytest.mark.slow
def test_english_edition_notebook(tmp_path):
    out = run_cells([
        IMPORTS + "\nimport numpy as np",
        "board = d2l.ProgressBoard('x')\n"
        "for x in np.arange(0, 10, 0.1):\n"
        "    board.draw(x, np.sin(x), 'sin', every_n=2)\n"
        "    board.draw(x, np.cos(x), 'cos', every_n=10)",
        "model = d2l.LinearRegression(lr=0.03)\n"
        "data = d2l.SyntheticRegressionData(w=torch.tensor([2, -3.4]), b=4.2)\n"
        "trainer = d2l.Trainer(max_epochs=3)\n"
        "trainer.fit(model, data)",
        "data = d2l.FashionMNIST(batch_size=256)\n"
        "model = d2l.SoftmaxRegression(num_outputs=10, lr=0.1)\n"
        "trainer = d2l.Trainer(max_epochs=3)\n"
        "trainer.fit(model, data)",
        "batch = next(iter(data.val_dataloader()))\n"
        "data.visualize(batch)",
        "scratch = d2l.LinearRegressionScratch(2, lr=0.03)\n"
        "print('L2 norm of w:', float((scratch.w ** 2).sum() / 2))",
        "[len(v) for v in board.data.values()], len(model.board.data['val_acc'])",
        "d2l.Trainer(max_epochs=1).fit(model, data)",  # the same model again: its figure shows in this cell
    ], tmp_path)
    check_clean(out)
    for cell in out[1:5] + out[7:]:
        assert images(cell) == 1 and not [o for o in cell if o["output_type"] == "execute_result"]
    assert out[5][0]["text"].startswith("L2 norm of w: ")
    assert out[6][0]["data"]["text/plain"] == "([50, 10], 3)"
