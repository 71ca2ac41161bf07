"""Lexical search in Chinese, Japanese and Korean: CJK runs are indexed and queried as bigrams."""

from __future__ import annotations

import pytest

import memcubed


def _ids(mc: memcubed.Memcubed, query: str) -> list[str]:
    return [hit.cube.id for hit in mc.search(query, mode="lexical").hits]


def test_chinese_words_and_a_whole_clause(lexical: memcubed.Memcubed) -> None:
    tea = lexical.add("我每天早上都喝绿茶，不喝咖啡。")
    coffee = lexical.add("他喜欢在办公室喝咖啡")
    lexical.add("Alice prefers green tea over coffee")
    assert _ids(lexical, "绿茶") == [tea.id]
    assert _ids(lexical, "我早上喝什么茶？")[0] == tea.id  # a question as a clause, no spaces
    assert _ids(lexical, "办公室")  == [coffee.id]
    assert set(_ids(lexical, "咖啡")) == {tea.id, coffee.id}
    assert _ids(lexical, "红酒") == []


def test_japanese_kanji_and_kana(lexical: memcubed.Memcubed) -> None:
    tokyo = lexical.add("来週、東京に行きます。")
    osaka = lexical.add("大阪のたこ焼きが大好きです")
    assert _ids(lexical, "東京") == [tokyo.id]
    assert _ids(lexical, "たこ焼き") == [osaka.id]  # kana and kanji in one word
    assert _ids(lexical, "東京に行く") [0] == tokyo.id
    assert _ids(lexical, "京都") == []


def test_korean_hangul_with_attached_particles(lexical: memcubed.Memcubed) -> None:
    stew = lexical.add("저는 김치찌개를 정말 좋아해요")
    rain = lexical.add("오늘은 비가 와요")
    assert _ids(lexical, "김치찌개") == [stew.id]  # the word without its particle 를
    assert _ids(lexical, "비") == []  # one syllable matches only a one-syllable run (bigram limit)
    assert _ids(lexical, "오늘 비가") [0] == rain.id


def test_mixed_scripts_and_english_keep_working(lexical: memcubed.Memcubed) -> None:
    phone = lexical.add("我的iPhone手机坏了")
    english = lexical.add("The staging server listens on port 8080")
    assert _ids(lexical, "手机") == [phone.id]
    assert _ids(lexical, "iphone") == [phone.id]
    assert _ids(lexical, "servers 8080") == [english.id]  # stemming unchanged


def test_updates_and_context_follow_the_cjk_text(lexical: memcubed.Memcubed) -> None:
    cube = lexical.add("我喜欢绿茶")
    lexical.update(cube.id, text="我喜欢乌龙茶")
    assert _ids(lexical, "绿茶") == []
    assert _ids(lexical, "乌龙") == [cube.id]
    source = {"type": "conversation", "uri": "chat-1"}
    question = lexical.add("你周末去哪里了？", source={**source, "occurred_at": "2024-05-01T10:00:00Z"})
    answer = lexical.add("去了海边", source={**source, "occurred_at": "2024-05-01T10:01:00Z"})
    # The answer's context column holds the question before it, split the same way.
    assert set(_ids(lexical, "周末")) == {question.id, answer.id}


@pytest.mark.parametrize("query", ['"绿茶" OR *', "绿茶)(", "。、！", "绿茶 NEAR 咖啡", "'; DROP TABLE cubes; --"])
def test_hostile_cjk_queries_are_plain_words(lexical: memcubed.Memcubed, query: str) -> None:
    tea = lexical.add("绿茶和咖啡")
    result = _ids(lexical, query)
    assert result in ([], [tea.id])
    assert lexical.get(tea.id).text == "绿茶和咖啡"  # stored text is never the split form


MULTILINGUAL_MEMORIES: dict[str, str] = {
    "tea_zh": "我每天早上喝一杯乌龙茶",
    "coffee_zh": "同事们下午经常一起喝咖啡",
    "wall_zh": "去年夏天我们在北京看了长城",
    "bank_zh": "她在上海的一家银行工作",
    "wedding_ja": "来月、東京で友達の結婚式があります",
    "ramen_ja": "駅前のラーメン屋は日曜日が休みです",
    "sakura_ja": "京都の桜は四月の初めが一番きれいです",
    "cat_ja": "うちの猫はマグロが大好きです",
    "phone_mixed": "我的iPhone屏幕昨天摔碎了",
    "meeting_mixed": "明天下午三点和Bob开项目meeting",
    "tests_mixed": "PythonのテストはpytestとCIで毎日回しています",
    "flight_mixed": "Flight JL123 to 大阪 leaves at 9am",
    "tea_en": "Alice prefers green tea over coffee",
    "marathon_en": "Tom ran the Berlin marathon in October",
    "hiking_ko": "저는 주말마다 등산을 해요",
}
"""A small multilingual store: Chinese, Japanese, Korean, English and mixed-script memories (``bench.multilingual``
reports recall over it too)."""

MULTILINGUAL_QUERIES: list[tuple[str, str]] = [
    ("乌龙茶", "tea_zh"),
    ("我早上喝什么茶？", "tea_zh"),
    ("在北京看长城", "wall_zh"),
    ("她在哪里工作？", "bank_zh"),
    ("東京の結婚式", "wedding_ja"),
    ("ラーメン屋はいつ休み？", "ramen_ja"),
    ("京都の桜", "sakura_ja"),
    ("猫の大好きな魚", "cat_ja"),
    ("iPhone 屏幕", "phone_mixed"),
    ("meeting with Bob", "meeting_mixed"),
    ("pytest CI", "tests_mixed"),
    ("大阪 flight", "flight_mixed"),
    ("Alice 喜欢 green tea", "tea_en"),
    ("Berlin marathon", "marathon_en"),
    ("주말 등산", "hiking_ko"),
]
"""(query, the memory it asks for): queries in each script, English queries of mixed memories, mixed queries."""


def test_multilingual_queries_find_their_memory_first(lexical: memcubed.Memcubed) -> None:
    ids = {key: lexical.add(text).id for key, text in MULTILINGUAL_MEMORIES.items()}
    missed = [(query, want) for query, want in MULTILINGUAL_QUERIES if _ids(lexical, query)[:1] != [ids[want]]]
    assert missed == []
    assert _ids(lexical, "東京") == [ids["wedding_ja"]]  # not Kyoto's 京都: bigrams, not characters
    assert _ids(lexical, "巴黎铁塔") == []  # nothing shares a bigram
