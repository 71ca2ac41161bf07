"""Parameter memory: LoRA adapters trained on plaintext facts, evaluated, serialised and served."""

from memcubed.engines.lora.config import ALL_LINEAR, LoRAConfig
from memcubed.engines.lora.control import CONTROL, control_probes
from memcubed.engines.lora.engine import LoRAEngine, Trained, open_model
from memcubed.engines.lora.evaluate import Evaluation, ProbeResult
from memcubed.engines.lora.gate import evaluation_record, gate, gate_passed
from memcubed.engines.lora.pairs import QA, Example, Fact, cloze, normalise, probes, qa_from_meta, question, recalled
from memcubed.engines.lora.serialize import Adapter, dump_adapter, load_adapter
from memcubed.engines.lora.serve import AdapterServer
from memcubed.engines.lora.train import TrainResult

__all__ = [
    "ALL_LINEAR",
    "CONTROL",
    "QA",
    "Adapter",
    "AdapterServer",
    "Evaluation",
    "Example",
    "Fact",
    "LoRAConfig",
    "LoRAEngine",
    "ProbeResult",
    "TrainResult",
    "Trained",
    "cloze",
    "control_probes",
    "dump_adapter",
    "evaluation_record",
    "gate",
    "gate_passed",
    "load_adapter",
    "normalise",
    "open_model",
    "probes",
    "qa_from_meta",
    "question",
    "recalled",
]
