"""AdapterWarmupHook: the schedule of the student's imitation gradient."""
import pytest

from fgd_mmrazor import FGDDistiller


def test_adapter_warmup_schedule_and_hook():
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from fgd_mmrazor.engine import AdapterWarmupHook, student_grad_scale_at
    assert [student_grad_scale_at(i, 3, 4) for i in range(9)] == [
        0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1
    ]
    assert student_grad_scale_at(0, 0, 0) == 1.0
    assert student_grad_scale_at(2, 2, 0) == 1.0
    # fade-out over the last 4 of 12 iterations, reaching 0 at the last
    assert [student_grad_scale_at(i, 2, 2, 4, 12) for i in range(12)] == [
        0, 0, 0.5, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25, 0
    ]
    with pytest.raises(ValueError):
        AdapterWarmupHook(adapter_only_iters=-1)
    with pytest.raises(ValueError):
        AdapterWarmupHook(fade_out_iters=-1)
    distiller = FGDDistiller(student_layers=['a'], student_channels=[4],
                             teacher_channels=[6], mask=None)
    hub = MessageHub.get_instance('adapter_warmup_test')
    runner = SimpleNamespace(iter=4, max_iters=20, message_hub=hub,
                             model=SimpleNamespace(distiller=distiller))
    AdapterWarmupHook(adapter_only_iters=3, ramp_iters=4).before_train_iter(
        runner, 0)
    assert distiller.student_grad_scale == 0.5
    runner.iter = 17
    AdapterWarmupHook(3, 4, fade_out_iters=4).before_train_iter(runner, 0)
    assert distiller.student_grad_scale == 0.5  # (20 - 1 - 17) / 4
    runner.iter = 4
    assert hub.get_scalar('train/imitation_grad_scale').current() == 0.5
    with pytest.raises(TypeError, match='FGDDistiller'):
        AdapterWarmupHook().before_train_iter(
            SimpleNamespace(iter=0, max_iters=1, message_hub=hub,
                            model=SimpleNamespace()), 0)


def test_adapter_warmup_delay_switches_imitation_off():
    """``delay_iters``: no imitation loss at all before it, the plain loss
    after (the authors' schedule)."""
    from types import SimpleNamespace

    from mmengine.logging import MessageHub

    from fgd_mmrazor.engine import AdapterWarmupHook
    distiller = FGDDistiller(student_layers=['a'], student_channels=[4],
                             teacher_channels=[6], mask=None)
    hub = MessageHub.get_instance('adapter_delay_test')
    runner = SimpleNamespace(iter=0, max_iters=20, message_hub=hub,
                             model=SimpleNamespace(distiller=distiller))
    hook = AdapterWarmupHook(delay_iters=3)
    seen = []
    for it in range(5):
        runner.iter = it
        hook.before_train_iter(runner, it)
        seen.append((distiller.imitation_scale, distiller.student_grad_scale))
    assert seen == [(0.0, 1.0)] * 3 + [(1.0, 1.0)] * 2
    with pytest.raises(ValueError, match='delay_iters'):
        AdapterWarmupHook(delay_iters=-1)
