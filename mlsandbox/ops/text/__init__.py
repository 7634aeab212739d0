"""Text OPs with Data-Juicer 1.6.1's names, stat keys and statistic definitions.

Importing this package registers every OP. Each OP's docstring states its statistic exactly
and any deliberate difference from Data-Juicer.
"""

from mlsandbox.ops.text.alphanumeric_filter import AlphanumericFilter
from mlsandbox.ops.text.character_repetition_filter import CharacterRepetitionFilter
from mlsandbox.ops.text.flagged_words_filter import FlaggedWordsFilter
from mlsandbox.ops.text.language_id_score_filter import LanguageIdScoreFilter
from mlsandbox.ops.text.perplexity_filter import PerplexityFilter
from mlsandbox.ops.text.special_characters_filter import SpecialCharactersFilter
from mlsandbox.ops.text.stopwords_filter import StopwordsFilter
from mlsandbox.ops.text.text_action_filter import TextActionFilter
from mlsandbox.ops.text.text_entity_dependency_filter import TextEntityDependencyFilter
from mlsandbox.ops.text.text_length_filter import TextLengthFilter
from mlsandbox.ops.text.token_num_filter import TokenNumFilter
from mlsandbox.ops.text.word_repetition_filter import WordRepetitionFilter
from mlsandbox.ops.text.words_num_filter import WordsNumFilter

__all__ = [
    "AlphanumericFilter",
    "CharacterRepetitionFilter",
    "FlaggedWordsFilter",
    "LanguageIdScoreFilter",
    "PerplexityFilter",
    "SpecialCharactersFilter",
    "StopwordsFilter",
    "TextActionFilter",
    "TextEntityDependencyFilter",
    "TextLengthFilter",
    "TokenNumFilter",
    "WordRepetitionFilter",
    "WordsNumFilter",
]
