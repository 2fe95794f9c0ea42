"""Label-word search leaves out the function words of the text's own language (prompt_models.function_words)."""
from prompt_models.word_pools import text_words
from prompt_models.function_words import english, function_words, text_language

GERMAN = ["Das Essen war kalt und der Service langsam, nicht gut.", "Ein wunderbarer Abend, wir kommen gern wieder.",
          "Die Suppe war versalzen und das Brot alt.", "Sehr freundliches Personal und gute Preise, der Wein war gut."]
FRENCH = ["Le repas était froid et le service lent.", "Une soirée merveilleuse, nous reviendrons avec les enfants.",
          "Je ne recommande pas cet hôtel, le personnel est désagréable."]


def test_the_language_is_the_one_whose_function_words_cover_the_text():
    assert text_language(["the film was a great joy to watch", "it is not what i expected"]) == "en"
    assert text_language(GERMAN) == "de" and text_language(FRENCH) == "fr"
    assert text_language(["这个电影很好看"]) is None and text_language([]) is None  # no spaces: no word tokens


def test_german_function_words_are_left_out_and_its_content_and_answer_words_kept():
    words = function_words(GERMAN)
    assert {"der", "und", "war", "das", "die"} <= words and not {"gut", "nicht", "kalt"} & words
    assert english() <= words
    found = text_words(GERMAN, min_count=1, exclude=words)
    assert "gut" in found and "nicht" in found and not {"der", "und", "war"} & set(found)
    assert function_words(["the film was a great joy", "it is not what i expected"]) == english()  # as benchmarked
