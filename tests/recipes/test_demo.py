from hyperkit.recipes.demo import main


def test_demo_trains_the_generator_and_the_direct_baseline(capsys):
    results = main(steps=150, seed=0)
    assert results["direct"] > 0.9
    assert results["generated"] > 0.6  # 10 classes: chance is 0.1
    assert "| generator (hyperkit) |" in capsys.readouterr().out
