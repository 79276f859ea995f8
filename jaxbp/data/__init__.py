"""Benchmark data: .mat fold reader, protocol (rotation, normalization), batching.

The TFDS builder lives in `jaxbp.data.tfds_builder` (imports tensorflow_datasets;
import it explicitly) and synthetic data in `jaxbp.data.synthetic`. Images (folders, digits):
`jaxbp.data.images`, their TFDS builder `jaxbp.data.image_builder`.
"""

from jaxbp.data.batching import batches as batches
from jaxbp.data.batching import num_batches as num_batches
from jaxbp.data.benchmark_files import DataFormatError as DataFormatError
from jaxbp.data.benchmark_files import Fold as Fold
from jaxbp.data.benchmark_files import check_disjoint_subjects as check_disjoint_subjects
from jaxbp.data.benchmark_files import fold_filename as fold_filename
from jaxbp.data.benchmark_files import load_dataset as load_dataset
from jaxbp.data.benchmark_files import load_fold as load_fold
from jaxbp.data.benchmark_files import resolve_dataset_dir as resolve_dataset_dir
from jaxbp.data.protocol import MinMax as MinMax
from jaxbp.data.protocol import Scalers as Scalers
from jaxbp.data.protocol import fold_roles as fold_roles
from jaxbp.data.protocol import make_rotation as make_rotation
from jaxbp.data.protocol import make_split as make_split
from jaxbp.data.protocol import n_rotations as n_rotations
from jaxbp.data.protocol import zscore as zscore
from jaxbp.data.specs import FS as FS
from jaxbp.data.specs import SPECS as SPECS
from jaxbp.data.specs import DatasetSpec as DatasetSpec
from jaxbp.data.specs import get_spec as get_spec
