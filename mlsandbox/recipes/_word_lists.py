"""The word lists a Data-Juicer export's filters count, written where Data-Juicer reads them.

Data-Juicer's flagged-word and stopword filters read every JSON file of a folder whose name holds
the list's name (``flagged_words.json``: ``{language: [words]}``) and download their own lists
where the folder holds none. mlsandbox counts the lists of Python packages (see the OPs), so an
export writes those into a folder beside the config and names it; an import notes a folder that
holds other lists.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from mlsandbox.errors import InvalidInputError
from mlsandbox.files import published
from mlsandbox.ops import DataJuicerWords, op_class
from mlsandbox.recipes._recipe import Condition, Recipe


def words_of(op_name: str) -> DataJuicerWords | None:
    """The word list an OP's Data-Juicer filter reads from a folder; None for other OPs (a condition's
    OP is a registered one: the condition checks it)."""
    mapping = op_class(op_name).data_juicer
    return None if mapping is None else mapping.words


def folder_args(conditions: Iterable[Condition]) -> list[str]:
    """The filters' arguments that name the word-list folder (``flagged_words_dir``, ...), sorted."""
    return sorted({words.folder_arg for c in conditions if (words := words_of(c.op)) is not None})


def data_juicer_word_lists(recipe: Recipe) -> dict[str, dict[str, list[str]]]:
    """The word lists the recipe's filters count, as Data-Juicer reads them from a folder: by file
    stem (``flagged_words``, ``stopwords``), ``{language: sorted words}``. Empty where none counts words."""
    lists: dict[str, dict[str, list[str]]] = {}
    for c in recipe.conditions:
        if (words := words_of(c.op)) is not None:
            lang = str(op_class(c.op)(**c.params).params.stat_params().get("lang", "en"))
            lists.setdefault(words.asset, {})[lang] = sorted(words.words(lang))
    return lists


def word_lists_folder(config: Path) -> Path:
    """Where :func:`~mlsandbox.recipes.save_data_juicer` writes the word lists of the config at ``config``:
    beside it, named after it."""
    return config.with_name(config.name.removesuffix(".yaml") + "_words")


#: The file that marks a folder of word lists as an export's own, so that the next export of its
#: config may replace it; a folder of that name without it is the user's, and never removed.
WORDS_MARK = "written-by-mlsandbox.txt"


def clear_word_lists(folder: Path) -> None:
    """Remove the lists an earlier export wrote to ``folder`` (only this recipe's may be read there);
    a file or an unmarked folder of that name is left as it is."""
    if (folder / WORDS_MARK).is_file():
        shutil.rmtree(folder)


def check_words_folder(folder: Path) -> None:
    """Word lists may go to ``folder``: nothing is there, or an earlier export's lists. A file or a
    folder that mlsandbox did not write (yours, or an export's from before the mark) is an input error."""
    if folder.exists() and not (folder / WORDS_MARK).is_file():
        raise InvalidInputError(f"{folder} exists and holds no word lists that mlsandbox marked as its own (a folder "
                                "of yours, or an export's from an earlier version): remove it, or write the config "
                                "elsewhere (its filters' word lists go there)")


def write_word_lists(folder: Path, lists: Mapping[str, Mapping[str, list[str]]]) -> None:
    """One ``<stem>.json`` per list, each put in place whole, in a folder marked as the export's. ASCII
    JSON (other letters escaped): Data-Juicer opens the files in the locale's encoding."""
    check_words_folder(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / WORDS_MARK).write_text("Word lists of a Data-Juicer config that mlsandbox exported; the next export "
                                     "of that config replaces this folder.\n", encoding="utf-8")
    for stem, by_language in lists.items():
        with published(folder / f"{stem}.json") as tmp:
            tmp.write_text(json.dumps(by_language, indent=1) + "\n", encoding="ascii")


def other_words(words: DataJuicerWords, given: object, params: Mapping[str, Any], base: Path) -> str | None:
    """Why an imported filter counted other words than the OP counts, or None where its folder (the
    argument's value ``given``; a relative folder is read from ``base``, the config's folder, where an
    export puts it) holds the OP's list, as an export read back does. The folder is read as
    Data-Juicer reads it: every JSON file whose name holds the list's name, merged, and ``all`` the
    union of the languages where no file names it."""
    if given is None:
        return (f"no {words.folder_arg}: Data-Juicer counted its own {words.asset} list; mlsandbox counts another, "
                "so the bounds may keep other samples")
    lang = str(params.get("lang", "en"))  # Data-Juicer's default
    folder = base / str(given)
    lists: dict[str, set[str]] = {}
    for file in sorted(folder.glob(f"*{words.asset}*.json")) if folder.is_dir() else []:
        try:
            for key, listed in json.loads(file.read_text(encoding="utf-8")).items():
                lists.setdefault(key, set()).update(listed)
        except (OSError, ValueError, AttributeError, TypeError):
            return f"{words.folder_arg} {given}: {file.name} is not a JSON mapping of word lists"
    if lists and "all" not in lists:
        lists["all"] = set().union(*lists.values())
    if lists.get(lang) == set(words.words(lang)):
        return None
    why = (f"no {words.asset} files there (Data-Juicer would download its own list)" if not lists else
           f"no {words.asset} list for {lang!r} there (Data-Juicer would stop)" if lang not in lists else
           f"its {words.asset} list for {lang!r} differs from mlsandbox's")
    return f"{words.folder_arg} {given}: {why}, so the bounds may keep other samples"
