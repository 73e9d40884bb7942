"The pretrained family's building blocks against independent references (fast: no run directory needed)."
import math
import pytest
import torch
import torch.nn.functional as F
from mobileml_book.models import Conv2dSame

def tf_same(x, conv):
    "TensorFlow's SAME padding written out: pad (total = max((ceil(n/s)-1)*s + k - n, 0)), the extra pixel after."
    n, k, s = x.shape[-1], conv.kernel_size[0], conv.stride[0]
    p = max((math.ceil(n/s) - 1)*s + k - n, 0)
    return F.conv2d(F.pad(x, [p//2, p - p//2, p//2, p - p//2]), conv.weight, conv.bias, conv.stride, 0, 1, conv.groups)

@pytest.mark.parametrize('k,s,n,groups', [(1, 1, 12, 1), (3, 1, 12, 4), (5, 1, 7, 4), (3, 2, 12, 4), (5, 2, 13, 1), (3, 2, 7, 1)])
def test_conv2d_same_matches_tensorflow_same_padding(k, s, n, groups):
    torch.manual_seed(0)
    conv = Conv2dSame(4, 8, k, s, groups=groups).eval()
    x = torch.randn(2, 4, n, n)
    out = conv(x)
    assert out.shape[-1] == math.ceil(n/s)
    torch.testing.assert_close(out, tf_same(x, conv), rtol=0, atol=1e-5)

def test_conv2d_same_exports_pads_only_where_asymmetric():
    "Symmetric cases use the conv's own padding: the exported graph holds a pad node only for the stride-2 conv."
    convs = torch.nn.Sequential(Conv2dSame(3, 8, 1), Conv2dSame(8, 8, 3, groups=8), Conv2dSame(8, 8, 3, 2, groups=8)).eval()
    g = torch.export.export(convs, (torch.randn(1, 3, 16, 16),)).graph
    pads = [n for n in g.nodes if n.op == 'call_function' and 'pad' in str(n.target)]
    assert len(pads) == 1, pads

@pytest.mark.parametrize('k,s,d,n', [(3, 1, 2, 12), (3, 2, 2, 13), (5, 1, 3, 9), (3, 2, 3, 10)])
def test_dilated_conv2d_same_matches_tensorflow_same_padding(k, s, d, n):
    "TensorFlow pads a dilated kernel as one of side (k - 1) d + 1: the values, not only the shape."
    torch.manual_seed(0)
    conv = Conv2dSame(4, 4, k, s, dilation=d).eval()
    x = torch.randn(1, 4, n, n)
    ke = (k - 1)*d + 1
    p = max((math.ceil(n/s) - 1)*s + ke - n, 0)
    ref = F.conv2d(F.pad(x, [p//2, p - p//2, p//2, p - p//2]), conv.weight, conv.bias, s, 0, d)
    with torch.no_grad(): torch.testing.assert_close(conv(x), ref)

def test_the_shipped_model_refuses_frames_the_app_did_not_prepare():
    "Preprocess takes exactly the contract's frames; anything else is named, not silently resized or broadcast."
    from mobileml_book.models import Preprocess
    pre = Preprocess(32, 1, 32, 3)
    assert pre(torch.zeros(2, 32, 32, 1, dtype=torch.uint8)).shape == (2, 3, 32, 32)
    for bad in [(2, 48, 48, 1), (2, 32, 32, 3), (32, 32, 4)]:
        with pytest.raises(ValueError, match='32 x 32 x 1'): pre(torch.zeros(bad, dtype=torch.uint8))

@pytest.mark.parametrize('width', [0.3, 0.6, 1.3])
def test_squeezenet_runs_at_any_width(width):
    from mobileml_book.models import SqueezeNet
    assert SqueezeNet(10, 3, width=width).eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
