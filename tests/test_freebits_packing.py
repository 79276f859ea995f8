"""The export's packing rule on bit configurations (jaxbp.freebits.packing)."""

from jaxbp.deploy import zoo
from jaxbp.deploy.layers import Layer
from jaxbp.freebits.packing import packable, packable_bits


def test_one_channel_stem_keeps_8_bit_weights_and_the_rest_is_untouched():
  net = zoo.bp_seed("resnet1d", "ppgbp")
  four = {l.name: (8 if l.name == "stem_conv" else 4, 4) for l in net.layers if l.weighted}
  out, raised = packable(four, net)
  assert raised == {"stem_conv": ((8, 4), (8, 8))}
  assert all(out[k] == v for k, v in four.items() if k != "stem_conv")


def test_widths_rise_to_the_smallest_packable_one():
  conv = Layer("c", "conv", ("input",), (8, 8, 6), (8, 8, 12), kernel=(1, 1))  # 6 in, 12 out channels
  assert packable_bits(conv, (8, 2)) == (8, 4)  # 2-bit needs multiples of 4: 6 is not; 4-bit (multiples of 2) fits.
  assert packable_bits(conv, (2, 8)) == (4, 8)  # the 6-channel input tensor cannot be 2-bit either.
  dw = Layer("d", "depthwise", ("input",), (8, 8, 4), (8, 8, 4), kernel=(3, 3), padding=(1, 1, 1, 1), groups=4)
  assert packable_bits(dw, (4, 2)) == (4, 2)  # depthwise: one input channel per group is fine (Cout = 4).
  fc = Layer("f", "linear", ("input",), (1, 1, 16), (1, 1, 10))
  assert packable_bits(fc, (4, 2)) == (4, 4)  # 10 outputs: 2-bit weights need multiples of 4.
