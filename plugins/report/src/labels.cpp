#include "labels.hpp"

#include <array>
#include <utility>

namespace evald::report {

namespace {

struct Text {
  L key;
  const char* en;
  const char* ko;
};

// In the order of L, so a label is found by index; the static_assert and the check in
// label() keep the order honest.
constexpr Text kTexts[] = {
    {L::ReportTitle, "Round report", "라운드 결과 보고서"},
    {L::Competition, "Competition", "대회"},
    {L::Round, "Round", "라운드"},
    {L::Run, "Run", "실행 ID"},
    {L::Status, "Status", "상태"},
    {L::Decided, "Decided", "확정"},
    {L::Undecided, "Not decided", "미확정"},
    {L::WaitingFor, "Waiting for", "확정되지 않은 사유"},
    {L::GeneratedAt, "Generated at", "생성 시각"},
    {L::Notice, "Notice", "알림"},
    {L::Scoreboard, "Scoreboard", "순위표"},
    {L::Rank, "Rank", "순위"},
    {L::Team, "Team", "참가팀"},
    {L::Total, "Total", "총점"},
    {L::Decision, "Decision", "결정"},
    {L::Reason, "Reason", "사유"},
    {L::WouldHaveTotal, "total it would have had", "실격 전 총점"},
    {L::WouldHaveRanked, "would have ranked", "실격 전 순위"},
    {L::NotCounted, "not counted", "순위 미반영"},
    {L::Tied, "tied", "동점"},
    {L::DecAdvance, "Advances", "진출"},
    {L::DecEliminated, "Eliminated", "탈락"},
    {L::DecDisqualified, "Disqualified", "실격"},
    {L::DecPending, "Pending", "보류"},
    {L::CountedAsZero, "counted as zero by operator decision", "운영자 결정으로 0점 처리"},
    {L::Incomplete, "incomplete", "미완료"},
    {L::ChartTitle, "Points by component", "항목별 점수"},
    {L::ChartCaption, "Stacked points per team on the round's scale; disqualified teams are drawn faded.",
     "라운드 배점 기준 참가팀별 항목 점수 누적 막대입니다. 실격 팀은 흐리게 표시됩니다."},
    {L::Scale, "Scale", "배점"},
    {L::Benchmark, "Benchmark breakdown", "벤치마크 세부 결과"},
    {L::Suite, "Suite", "평가 세트"},
    {L::Accuracy, "Accuracy", "정확도"},
    {L::Interval95, "95% interval", "95% 신뢰구간"},
    {L::Items, "Items", "문항 수"},
    {L::Points, "Points", "점수"},
    {L::Panel, "Expert panel", "전문가 평가"},
    {L::PanelScores, "Scores by criterion (mean over raters, sd in brackets)", "평가항목별 점수 (평가위원 평균, 괄호 안은 표준편차)"},
    {L::Agreement, "Inter-rater agreement", "평가위원 간 일치도"},
    {L::AlphaInterval, "Krippendorff's alpha (interval)", "크리펜도르프 알파 (등간 척도)"},
    {L::AlphaOrdinal, "Krippendorff's alpha (ordinal)", "크리펜도르프 알파 (서열 척도)"},
    {L::AlphaByCriterion, "Alpha by criterion", "평가항목별 알파"},
    {L::Icc21, "ICC(2,1), one rater", "ICC(2,1), 단일 평가위원"},
    {L::Icc2k, "ICC(2,k), the panel's mean", "ICC(2,k), 평가위원단 평균"},
    {L::IccUnavailable, "ICC not available", "ICC 산출 불가"},
    {L::Raters, "Raters", "평가위원 수"},
    {L::Rater, "Rater", "평가위원"},
    {L::Flagged, "Flagged", "이상 표시"},
    {L::NoneFlagged, "No rater flagged.", "이상 표시된 평가위원이 없습니다."},
    {L::LooCorrelation, "Correlation with the others", "다른 평가위원과의 상관"},
    {L::MeanDeviation, "Mean deviation (share of scale)", "평균 편차 (배점 대비)"},
    {L::Spread, "Spread across raters (sd; min-max)", "평가위원 간 편차 (표준편차; 최소-최대)"},
    {L::Criterion, "Criterion", "평가항목"},
    {L::RowsUsed, "Rows used", "반영된 행"},
    {L::RowsRejected, "Rows rejected", "거부된 행"},
    {L::FlaggedYes, "flagged", "이상"},
    {L::Users, "User evaluation", "사용자 평가"},
    {L::UserPoints, "Points (95% interval)", "점수 (95% 신뢰구간)"},
    {L::Strength, "Strength", "상대 강도"},
    {L::StrengthCaption, "Bradley-Terry strength from pairwise battles (log scale, centred at 0) with its 95% bootstrap interval.",
     "쌍대 비교 투표로 추정한 브래들리-테리 상대 강도(로그 척도, 평균 0)와 부트스트랩 95% 신뢰구간입니다."},
    {L::WinProb, "Win probability against the field", "전체 대비 승리 확률"},
    {L::Ratings, "Ratings (mean, 95% interval, n)", "평점 (평균, 95% 신뢰구간, 응답 수)"},
    {L::Battles, "Battles", "대결 수"},
    {L::WinRate, "Head-to-head win rates", "상대 전적 승률"},
    {L::WinRateCaption, "Share of battles the row's team won against the column's team (a tie counts half).",
     "행의 팀이 열의 팀을 이긴 비율입니다 (무승부는 0.5승)."},
    {L::Provenance, "Model provenance", "모델 독자성 검증"},
    {L::Gate, "Gate", "게이트"},
    {L::Verdict, "Verdict", "판정"},
    {L::Component, "Component", "구성 요소"},
    {L::DerivedFrom, "Closest reference", "가장 유사한 참조 모델"},
    {L::PHolm, "p (Holm)", "p (홈 보정)"},
    {L::Effect, "Effect", "효과 크기"},
    {L::Heatmap, "Per-layer evidence", "계층별 증거"},
    {L::HeatmapCaption, "Each cell is one tensor against its matched reference tensor: colour is the matched unit correlation (effect, 0 white to 1 dark red); a black dot marks a verbatim copy; grey was not tested.",
     "각 칸은 제출 모델의 텐서와 대응된 참조 텐서의 비교입니다. 색은 대응 단위 상관(효과 크기, 0 흰색에서 1 진한 빨강), 검은 점은 그대로 복사된 가중치, 회색은 검정하지 않은 텐서입니다."},
    {L::Layer, "Layer", "계층"},
    {L::NoLayer, "outside blocks", "블록 외"},
    {L::Model, "Model", "모델"},
    {L::EvidenceFile, "Evidence file", "증거 파일"},
    {L::GateReason, "Gate result", "게이트 결과"},
    {L::Rule, "Rule", "규정"},
    {L::RuleInEnglish, "As recorded by the tally.", "집계 단계가 기록한 규정 원문(영어)입니다."},
    {L::OperatorDecisions, "Operator decisions", "운영자 결정"},
    {L::IgnoredDecisions, "Decisions not applied", "반영되지 않은 결정"},
    {L::DecisionBy, "By", "결정자"},
    {L::ReceivedAt, "Received at", "접수 시각"},
    {L::Id, "ID", "ID"},
    {L::None, "None.", "없음."},
    {L::FailedUpstream, "Failed upstream jobs", "실패한 선행 작업"},
    {L::Stage, "Stage", "단계"},
    {L::Error, "Error", "오류"},
    {L::Manifest, "Manifest", "매니페스트"},
    {L::Pipeline, "Pipeline", "파이프라인"},
    {L::Plugins, "Plugins", "플러그인"},
    {L::Version, "Version", "버전"},
    {L::DaemonVersion, "evald version", "evald 버전"},
    {L::Inputs, "Input files", "입력 파일"},
    {L::Role, "Role", "역할"},
    {L::Path, "Path", "경로"},
    {L::Sha256, "SHA-256", "SHA-256"},
    {L::AtReport, "When reported", "보고서 작성 시"},
    {L::InputChanged, "changed since it was scored", "채점 이후 변경됨"},
    {L::InputMissing, "missing", "파일 없음"},
    {L::InputSame, "unchanged", "변경 없음"},
    {L::Signature, "Signature", "전자서명"},
    {L::PublicKey, "Public key (ed25519, hex)", "공개키 (ed25519, 16진수)"},
    {L::SignatureHow,
     "report.sig is an ed25519 signature over the bytes of report.json followed by the bytes of manifest.json; manifest.json holds the SHA-256 of this page, report.md, scoreboard.csv and every input file. Check with: evalctl report verify DIR --key PUBLIC_KEY",
     "report.sig는 report.json의 바이트 뒤에 manifest.json의 바이트를 이어 붙인 내용에 대한 ed25519 서명입니다. manifest.json에는 이 문서, report.md, scoreboard.csv와 모든 입력 파일의 SHA-256이 들어 있습니다. 확인 방법: evalctl report verify DIR --key 공개키"},
    {L::Notes, "Notes", "참고 사항"},
    {L::Entrant, "Entrant", "참가팀 ID"},
    {L::NotTested, "not tested", "검정 안 함"},
    {L::Verbatim, "verbatim copy", "그대로 복사"},
    {L::Name, "Name", "이름"},
    {L::CompetitionTitle, "Competition report", "대회 종합 보고서"},
    {L::Finalists, "Finalists", "최종 선정"},
    {L::NoFinalistsYet, "not yet: the last round is not decided", "아직 없음: 마지막 라운드가 확정되지 않았습니다"},
    {L::Roster, "Who entered", "참가 명단"},
    {L::Via, "How", "참가 경로"},
    {L::Joined, "Joined", "참가 시점"},
    {L::Registered, "Registered", "등록 시각"},
    {L::Submissions, "Submissions (round, time, SHA-256)", "제출물 (라운드, 시각, SHA-256)"},
    {L::DecidedFrom, "Decided from", "결정 근거 실행"},
    {L::DecidedBy, "Decided by", "결정자"},
    {L::NotDecided, "Not decided yet", "아직 확정되지 않음"},
    {L::RoundReport, "Signed round report", "서명된 라운드 보고서"},
    {L::AdditionalCall, "Additional call", "추가 공모"},
    {L::Weights, "Weights", "배점"},
    {L::AdvanceRule, "Advancement", "진출 기준"},
    {L::Entrants, "Entrants", "참가팀"},
    {L::FromRound, "Roster from", "명단 출처"},
    {L::ReplacesDecision, "Replaces an earlier decision; reason", "이전 결정을 대체함; 사유"},
    {L::CompetitionHow,
     "Each round's decision names the run and the tally result (SHA-256) it was taken from; each signed round report lists every input it was computed from. Check a round report with: evalctl report verify DIR --key PUBLIC_KEY",
     "각 라운드의 결정에는 근거가 된 실행과 집계 결과(SHA-256)가 기록되어 있고, 서명된 라운드 보고서에는 계산에 쓰인 모든 입력이 나열되어 있습니다. 확인 방법: evalctl report verify DIR --key 공개키"},
};
static_assert(std::size(kTexts) == size_t(L::kCount), "one text per label");

constexpr bool in_order() {
  for (size_t i = 0; i < std::size(kTexts); ++i)
    if (size_t(kTexts[i].key) != i) return false;
  return true;
}
static_assert(in_order(), "kTexts must list the labels in the order of L");

}  // namespace

std::string_view label(L l, Lang lang) {
  const Text& t = kTexts[size_t(l)];
  return lang == Lang::Ko ? t.ko : t.en;
}

std::string_view decision_label(std::string_view d, Lang lang) {
  if (d == "advance") return label(L::DecAdvance, lang);
  if (d == "eliminated") return label(L::DecEliminated, lang);
  if (d == "disqualified") return label(L::DecDisqualified, lang);
  if (d == "pending") return label(L::DecPending, lang);
  return d;
}

std::string_view verdict_label(std::string_view v, Lang lang) {
  if (lang == Lang::En) return v;
  static constexpr std::pair<const char*, const char*> ko[] = {
      {"pass", "통과"}, {"fail", "불통과"}, {"inconclusive", "판단 불가"}, {"missing", "결과 없음"},
      {"independent", "독자 개발"}, {"derived", "파생"}, {"absent", "해당 없음"}, {"weak", "약한 증거"}};
  for (auto& [en, k] : ko)
    if (v == en) return k;
  return v;
}

}  // namespace evald::report
