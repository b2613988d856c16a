import pytest
import torch


@pytest.fixture(autouse=True)
def _seed_and_threads():
    # Tests are small: one thread avoids oversubscribing the 2 shared cores.
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
