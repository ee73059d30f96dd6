"""The demo's report.json keys, the gap closed and the noise sentence."""
import math

import pytest

from fgd_mmrazor.demo.report import (comparison_sentence, demo_report,
                                     gap_closed)


def _results(teacher, alone, distilled):
    return {
        name: dict(bbox_mAP=v, bbox_mAP_50=2 * v)
        for name, v in (('teacher', teacher), ('baseline', alone),
                        ('distilled', distilled))
    }


def _report(results, seed=5):
    return demo_report(
        configs=dict(teacher='/r/configs/demo/t.py',
                     baseline='/r/configs/demo/s.py',
                     distilled='/r/configs/demo/d.py'),
        checkpoints={k: f'/w/{k}.pth'
                     for k in results},
        results=results, seed=seed, settings=dict(teacher='pretrained'),
        times=dict(teacher=10.04, total=30.0), repo='/r')


def test_report_keys_and_gap_closed():
    report = _report(_results(0.20, 0.10, 0.125))
    assert report['teacher_config'] == 'configs/demo/t.py'
    assert report['student_config'] == 'configs/demo/s.py'
    assert report['distilled_config'] == 'configs/demo/d.py'
    assert report['seed'] == 5
    assert report['settings'] == dict(teacher='pretrained')
    assert report['gap_closed']['bbox_mAP'] == pytest.approx(0.25)
    assert report['gap_closed']['bbox_mAP_50'] == pytest.approx(0.25)
    assert report['paired_difference']['bbox_mAP'] == pytest.approx(0.025)
    assert report['val_bbox_mAP'] == dict(teacher=0.20, baseline=0.10,
                                          distilled=0.125)
    assert report['times_s'] == dict(teacher=10.0, total=30.0)
    text = comparison_sentence(report)
    assert '+0.0250 bbox mAP' in text and '25% of the' in text
    assert 'within noise' not in text


def test_small_difference_is_called_noise_and_no_gap_is_nan():
    report = _report(_results(0.20, 0.10, 0.095))
    text = comparison_sentence(report)
    assert '-0.0050' in text and 'within noise' in text
    assert math.isnan(gap_closed(0.1, 0.1, 0.2))
    assert gap_closed(0.3, 0.1, 0.0) == pytest.approx(-0.5)
    partial = _report({'baseline': dict(bbox_mAP=0.1, bbox_mAP_50=0.2)})
    assert 'gap_closed' not in partial and 'paired_difference' not in partial
    assert 'not both trained' in comparison_sentence(partial)
