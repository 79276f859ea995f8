"""Training: pure steps, the benchmark's protocol, cross-validation."""

from jaxbp.train.fit import FitConfig, FitResult, evaluate_mse, fit, predict
from jaxbp.train.state import TrainState, create_state
from jaxbp.train.steps import apply_model, make_eval_step, make_train_step, mse, target_key
