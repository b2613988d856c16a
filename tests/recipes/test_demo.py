from hyperkit.recipes.demo import main, uhn


def test_uhn_demo_trains_the_generator_and_the_direct_baseline(capsys):
    results = uhn(steps=150, seed=0)
    assert results["direct"] > 0.9
    assert results["generated"] > 0.6  # 10 classes: chance is 0.1
    assert "| generator (hyperkit) |" in capsys.readouterr().out


def test_tabular_demo_fits_the_shipped_mothernet_next_to_baselines(capsys):
    results = main()  # the README's main job
    assert {k.split("/")[1] for k in results} == {"MotherNet (hyperkit)", "MotherNet, one forward pass", "LogisticRegression",
                                                  "HistGradientBoosting"}
    # the shipped model is far better than chance on these tables (chance AUC is 0.5)
    assert all(r["auc"] > 0.8 for k, r in results.items() if "MotherNet" in k)
    assert "| iris | MotherNet (hyperkit) |" in capsys.readouterr().out
