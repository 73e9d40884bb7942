"Chapter 04's exporters on what a team's photos give (RGB frames), for the pretrained student and the from-scratch nets (no run needed)."
import numpy as np
import pytest
import torch
from mobileml_book.training import PARAMS as TRAINING, student_spec
from mobileml_book.models import build_net, model_spec
from mobileml_book.conversion import (FrameModel, coreml_structure, export_coreml, export_executorch, export_onnx,
                                   export_tflite, runner, torch_logits)

def _student(arch:str='efficientnet_lite0', channels:int=3):
    if arch.startswith('efficientnet'): spec = student_spec({**TRAINING.defaults('quick'), 'arch': arch}, list('abcd'), (32, channels))
    else: spec = model_spec(arch, list('abcd'), 32, channels, 32, channels)
    torch.manual_seed(0)
    return FrameModel(build_net(spec).eval(), spec).eval(), spec

@pytest.mark.parametrize('arch', ['efficientnet_lite0', 'mobilenetv2', 'squeezenet'])
def test_rgb_onnx_has_a_free_batch_and_agrees(tmp_path, arch):
    m, spec = _student(arch)
    f = export_onnx(m, spec, tmp_path/'m.onnx')                        # TorchExportError 'Invalid ranges' before
    x = np.random.default_rng(0).integers(0, 256, (7, 32, 32, 3), dtype=np.uint8)
    for n in (1, 7): np.testing.assert_allclose(runner(f, 'onnx')(x[:n]), torch_logits(m, x[:n]), atol=1e-4)

@pytest.mark.parametrize('fmt', ['tflite', 'executorch'])
def test_rgb_runs_in_the_other_runtimes(tmp_path, fmt):
    m, spec = _student()                                               # the student that ships; its TFLite file has batch 1
    f = {'tflite': export_tflite, 'executorch': export_executorch}[fmt](m, spec, tmp_path/f'm.{fmt}')
    x = np.random.default_rng(0).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    np.testing.assert_allclose(runner(f, fmt)(x), torch_logits(m, x), atol=1e-4)

def test_rgb_coreml_takes_an_rgb_image(tmp_path):
    m, spec = _student()
    f = export_coreml(m, spec, tmp_path/'m.mlpackage', meta={'labels': spec.labels})
    s = coreml_structure(f, spec, 'iOS16')
    assert s['ok'], s['problems']
