"""`mpls up`'s option rules, which live with the options."""

from mpls_celery.config.run_config import RunConfig
from mpls_celery.runtime.options import RuntimeOptions

CFG = RunConfig().with_overrides(**{"training.iterations": 7})


def test_a_time_limit_or_target_replaces_the_iteration_limit_unless_iterations_are_given():
    assert RuntimeOptions.for_run(CFG, False, until_seconds=60.0).iterations is None
    assert RuntimeOptions.for_run(CFG, False, target_acc=0.9).iterations is None
    assert RuntimeOptions.for_run(CFG, True, until_seconds=60.0).iterations == 7
    assert RuntimeOptions.for_run(CFG, False).iterations == 7
    assert RuntimeOptions.for_run(CFG, False, min_workers=None).min_workers == 1
