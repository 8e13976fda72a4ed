"""Japanese and English texts of the console.  Japanese is the default.

One table, key -> (ja, en), so a missing translation is a test failure rather than
a half-English page; ``tests/console`` checks every key a template uses exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

LANGUAGES = ("ja", "en")

Translator = Callable[..., str]

MESSAGES: dict[str, tuple[str, str]] = {
    # frame
    "app.title": ("送信監査コンソール", "Mail review console"),
    "app.brand": ("DLP 送信監査", "DLP review"),
    "nav.dashboard": ("概況", "Dashboard"),
    "nav.log": ("送信ログ", "Send log"),
    "nav.held": ("保留メール", "Held mail"),
    "nav.allowlist": ("許可ドメイン", "Allowlist"),
    "nav.users": ("利用者", "Users"),
    "nav.account": ("パスワード変更", "Change password"),
    "nav.logout": ("ログアウト", "Log out"),
    "nav.lang_other": ("English", "日本語"),
    "role.reviewer": ("閲覧者", "reviewer"),
    "role.approver": ("承認者", "approver"),
    "role.admin": ("管理者", "admin"),
    # login
    "login.title": ("ログイン", "Sign in"),
    "login.name": ("利用者名", "User name"),
    "login.password": ("パスワード", "Password"),
    "login.submit": ("ログイン", "Sign in"),
    "login.failed": (
        "利用者名またはパスワードが違います（{n}回続けて失敗するとアカウントが"
        "しばらくロックされます）。",
        "Wrong user name or password ({n} failures in a row lock the account for a while).",
    ),
    "login.throttled": (
        "ログインの試行が多すぎます。{seconds}秒後にもう一度お試しください。",
        "Too many sign-in attempts from your address. Try again in {seconds} seconds.",
    ),
    "login.busy": (
        "ただいまログインが混み合っています。{seconds}秒後にもう一度お試しください。",
        "Too many sign-ins at once. Try again in {seconds} seconds.",
    ),
    "login.expired": (
        "フォームの有効期限が切れました。もう一度ログインしてください。",
        "The form expired; please sign in again.",
    ),
    "login.note": (
        "この画面は情報管理担当者専用です。アカウントは管理者が「dlp console user add」で作成します。",
        "For information-management staff only. Accounts are created by an administrator "
        'with "dlp console user add".',
    ),
    # errors
    "error.title": ("エラー", "Error"),
    "error.forbidden": (
        "この操作を行う権限がありません。",
        "Your role does not allow this.",
    ),
    "error.csrf": (
        "フォームの確認用トークンがないか、一致しません。ページを開き直してから操作してください。",
        "The form's security token is missing or wrong. Reload the page and try again.",
    ),
    "error.login_required": ("ログインしてください。", "Please sign in."),
    "error.not_found": ("見つかりません。", "Not found."),
    "error.back": ("戻る", "Back"),
    "error.sendlog": (
        "送信ログを開けません: {detail}",
        "The send log cannot be opened: {detail}",
    ),
    # common
    "common.none": ("なし", "none"),
    "common.yes": ("はい", "yes"),
    "common.no": ("いいえ", "no"),
    "common.any": ("すべて", "any"),
    "common.apply": ("絞り込む", "Apply"),
    "common.clear": ("条件をクリア", "Clear"),
    "common.prev": ("前へ", "Previous"),
    "common.next": ("次へ", "Next"),
    "common.page": ("{page} / {pages} ページ", "Page {page} of {pages}"),
    "common.page_open": ("{page} ページ目", "Page {page}"),
    "common.total": ("{total} 件", "{total} entries"),
    "common.total_more": ("{total} 件以上", "more than {total} entries"),
    "common.comment": ("コメント（必須）", "Comment (required)"),
    "common.comment_required": ("コメントを入力してください。", "A comment is required."),
    "common.time_utc": ("日時", "Time"),
    "common.tz_note": (
        "時刻は日本時間（JST）で表示しています。",
        "Times are shown in JST (UTC+9).",
    ),
    "common.saved": ("保存しました。", "Saved."),
    # send log
    "log.title": ("送信ログ", "Send log"),
    "log.filters": ("絞り込み", "Filters"),
    "log.since": ("開始日", "From"),
    "log.until": ("終了日", "To"),
    "log.sender": ("送信者", "Sender"),
    "log.recipient_domain": ("宛先ドメイン", "Recipient domain"),
    "log.recipient_class": ("宛先の区分", "Recipient class"),
    "log.verdict": ("判定", "Verdict"),
    "log.has_findings": ("検出", "Findings"),
    "log.with_findings": ("検出あり", "with findings"),
    "log.without_findings": ("検出なし", "without findings"),
    "log.attachment": ("添付ファイル名 / SHA-256", "Attachment name / SHA-256"),
    "log.event": ("種類", "Kind"),
    "log.audit_key": ("監査キー", "Audit key"),
    "log.export": ("この条件で CSV 出力", "Export these entries as CSV"),
    "log.empty": ("条件に合う記録はありません。", "No entries match."),
    "log.col.time": ("日時", "Time"),
    "log.col.sender": ("送信者", "Sender"),
    "log.col.recipients": ("宛先", "Recipients"),
    "log.col.subject": ("件名", "Subject"),
    "log.col.attachments": ("添付", "Attachments"),
    "log.col.findings": ("検出", "Findings"),
    "log.col.verdict": ("判定", "Verdict"),
    "log.sort_by": ("この列で並べ替え", "Sort by this column"),
    "log.sort_too_many": (
        "該当が {n} 件を超えるため、この列では並べ替えできません（日時順で表示）。期間などで絞り込んでください。",
        "More than {n} entries match, too many to sort by this column (shown by time). Narrow the filter first.",
    ),
    "log.bad_filter": ("絞り込み条件が正しくありません: {detail}", "Invalid filter: {detail}"),
    "log.more_recipients": ("他 {n} 件", "+{n} more"),
    "log.reportable": ("報告対象規模", "reportable scale"),
    # entry detail
    "entry.title": ("送信記録 #{id}", "Entry #{id}"),
    "entry.envelope": ("エンベロープ", "Envelope"),
    "entry.audit_key": ("監査キー（MTA のキュー ID）", "Audit key (MTA queue id)"),
    "entry.message_id": ("Message-ID", "Message-ID"),
    "entry.client": ("接続元", "Client"),
    "entry.header_from": ("From ヘッダー", "From header"),
    "entry.recipients": ("宛先", "Recipients"),
    "entry.address": ("アドレス", "Address"),
    "entry.domain": ("ドメイン", "Domain"),
    "entry.class": ("区分", "Class"),
    "entry.resembles": ("似ているドメイン", "Resembles"),
    "entry.attachments": ("添付ファイル", "Attachments"),
    "entry.filename": ("ファイル名", "File name"),
    "entry.type": ("種類", "Type"),
    "entry.size": ("サイズ", "Size"),
    "entry.status": ("検査状態", "Scan status"),
    "entry.findings": (
        "検出（件数のみ。番号そのものは記録しません）",
        "Findings (counts only; numbers are never recorded)",
    ),
    "entry.detector": ("検出器", "Detector"),
    "entry.confidence": ("確度", "Confidence"),
    "entry.count": ("件数", "Count"),
    "entry.distinct": ("異なる番号の数", "Distinct numbers"),
    "entry.locations": ("箇所数", "Places"),
    "entry.mynumber_total": ("個人番号 合計 / 異なる番号", "My Numbers total / distinct"),
    "entry.reportable_note": (
        "100人分を超える個人番号、または1,000人を超える名簿: 漏えい等報告"
        "（番号法規則第2条第4号、個人情報保護法施行規則第7条第4号）の対象規模です。",
        "More than 100 people's My Numbers, or a roster of more than 1,000 persons: the scale"
        " that must be reported (番号法規則 第2条第4号, 個人情報保護法施行規則 第7条第4号).",
    ),
    "entry.other_detectors": (
        "その他の識別子 合計 / 異なる値（名簿は人数）",
        "Other identifiers total / distinct (roster: persons)",
    ),
    "entry.verdict": ("判定", "Verdict"),
    "entry.rule": ("規則", "Rule"),
    "entry.reasons": ("理由", "Reasons"),
    "entry.next_hop_reply": ("次ホップの応答", "Next hop's reply"),
    "entry.scan_error": ("検査エラー", "Scan error"),
    "entry.unread": ("検査できなかった部分", "Not read"),
    "entry.actor": ("操作者", "By"),
    "entry.comment": ("コメント", "Comment"),
    "entry.detail": ("詳細", "Detail"),
    "entry.back": ("一覧へ戻る", "Back to the list"),
    "entry.related": (
        "同じ監査キーの記録（配送結果・保留解除など）",
        "Other entries with this audit key (outcome, release …)",
    ),
    # verdicts, classes, events
    "action.deliver": ("配送", "deliver"),
    "action.tag": ("警告付き配送", "tag"),
    "action.hold": ("保留", "hold"),
    "action.confirm": ("送信者確認", "confirm"),
    "action.delay": ("送信保留", "delay"),
    "action.approve": ("承認待ち", "approve"),
    "action.reject": ("拒否", "reject"),
    "action.tempfail": ("一時エラー", "tempfail"),
    "class.own": ("自組織", "own"),
    "class.partner": ("取引先", "partner"),
    "class.external": ("外部", "external"),
    "class.lookalike": ("なりすまし疑い", "lookalike"),
    "class.freemail": ("フリーメール・携帯", "free mail / mobile"),
    "nav.analysis": ("ログ分析", "Analysis"),
    "analysis.title": ("ログ分析", "Log analysis"),
    "analysis.help": (
        "送信者ごとに、いつもの水準と比べます。各行から該当する送信ログへ移動できます。",
        "Each sender against their own usual level; every row links to the entries behind it.",
    ),
    "analysis.truncated": (
        "記録が多いため、期間の一部だけを集計しました。期間を短くしてください。",
        "Too many entries: only part of the period was read. Choose a shorter period.",
    ),
    "analysis.levels": ("いつもより多い外部への添付送信", "Senders above their usual level"),
    "analysis.levels_help": (
        "期間内の外部（フリーメール・類似ドメインを含む）への添付送信と、"
        "その前8期間の平均（基準）。5件以上かつ基準の3倍以上で警告します。",
        "Attachment sends outside (free mail and lookalikes included) in the period, and the "
        "average of the 8 periods before (baseline). Flagged at 5 or more and 3x the baseline.",
    ),
    "analysis.outside": ("外部", "outside"),
    "analysis.freemail": ("フリーメール", "free mail"),
    "analysis.baseline": ("基準", "baseline"),
    "analysis.flag": ("要確認", "check"),
    "analysis.first_domains": ("初めての外部ドメイン", "First-time outside domains"),
    "analysis.first_help": (
        "期間内に、その送信者がそれまでの8期間に送ったことのない外部ドメインへ送ったもの。",
        "Outside domains a sender mailed in the period and not in the 8 periods before.",
    ),
    "analysis.own_address": (
        "本人の私用アドレスと思われる宛先への送信",
        "Sends to a probable own private address",
    ),
    "analysis.messages": ("件数", "messages"),
    "report.title": ("報告書の下書き", "Report draft"),
    "report.help": (
        "送信ログの記録から、個人情報保護委員会への報告（速報・確報）の下書きを作ります。"
        "作成したことは送信ログに記録されます。⑤〜⑨は担当者が記入してください。",
        "Drafts the report to the Personal Information Protection Commission from the send "
        "log. Each draft is recorded in the send log; items 5-9 are for you to fill in.",
    ),
    "report.ids": ("記録ID（複数可）", "Entry ids (one or more)"),
    "report.discovered": ("発覚日", "Discovered on"),
    "report.wrongful": (
        "不正の目的によるもの（確報の期限は60日）",
        "For a wrongful purpose (final report due in 60 days)",
    ),
    "report.make": ("下書きを作成", "Draft"),
    "report.make_md": ("Markdownで保存", "Save as Markdown"),
    "report.make_docx": ("Wordで保存", "Save as Word"),
    "report.bad_id": ("記録IDは数字で指定してください: {id}", "An entry id is a number: {id}"),
    "report.need_ids": ("記録IDを1〜{n}件指定してください。", "Give between 1 and {n} entry ids."),
    "report.bad_date": ("発覚日は YYYY-MM-DD で指定してください。", "Discovered on: YYYY-MM-DD."),
    "report.link": ("報告書の下書き", "Report draft"),
    "report.selected": ("選択した記録で報告書の下書き", "Report draft for the selected entries"),
    "class.own_address": ("本人の私用アドレス?", "own private address?"),
    "class.own_address_hint": (
        "送信者の氏名・アドレスに似たフリーメールのアドレスです（自宅等への送信の可能性）",
        "A free-mail address resembling the sender's name or address (possibly their own)",
    ),
    "event.message": ("メール", "message"),
    "event.release": ("保留解除", "release"),
    "event.discard": ("破棄", "discard"),
    "event.expire": ("保留期限切れ削除", "expired hold"),
    "event.delete": ("削除", "delete"),
    "event.allowlist_add": ("許可ドメイン追加", "allowlist add"),
    "event.allowlist_remove": ("許可ドメイン削除", "allowlist remove"),
    "event.purge": ("期限切れ削除", "purge"),
    "event.outcome": ("配送結果", "outcome"),
    "event.decision": ("送信の判断（配送待ち）", "decision (delivery pending)"),
    "event.timeout": ("期限切れで担当者へ", "timed out to staff"),
    "event.remind": ("承認の再通知", "reminder"),
    "event.escalate": ("承認のエスカレーション", "escalation"),
    "event.incident_report": ("報告書の下書き作成", "incident report drafted"),
    "confidence.high": ("高", "high"),
    "confidence.medium": ("中", "medium"),
    "confidence.low": ("低", "low"),
    # held mail
    "held.title": ("保留メール", "Held mail"),
    "held.empty": ("保留中のメールはありません。", "No mail is held."),
    "held.col.held_at": ("保留日時", "Held at"),
    "held.col.age": ("経過", "Age"),
    "held.col.sender": ("送信者", "Sender"),
    "held.col.recipients": ("宛先", "Recipients"),
    "held.col.subject": ("件名", "Subject"),
    "held.col.reasons": ("理由", "Reason"),
    "held.col.size": ("サイズ", "Size"),
    "held.col.waiting": ("判断する人", "Decided by"),
    "dash.waiting": ("送信者・承認者の判断待ち", "Waiting for a sender or an approver"),
    "dash.decision_median": (
        "期間中のリンクからの判断 {n} 件、判断までの時間（中央値） {median}",
        "{n} decisions by link in the period; median time to decision {median}",
    ),
    "held.kind.hold": ("情報管理担当者", "Security staff"),
    "held.kind.confirm": ("送信者の確認待ち", "Sender to confirm"),
    "held.kind.delay": ("送信保留（時間で送信）", "Delayed (sent when time is up)"),
    "held.kind.approve": ("承認待ち", "Waiting for approval"),
    "held.until": ("期限", "until"),
    "held.age.minutes": ("{n} 分", "{n} min"),
    "held.age.hours": ("{n} 時間", "{n} h"),
    "held.age.days": ("{n} 日", "{n} days"),
    "held.expires": (
        "保存期限 {days} 日を過ぎると自動で削除されます。",
        "Deleted automatically after {days} days.",
    ),
    "held.detail": ("保留メール {id}", "Held message {id}"),
    "held.findings": (
        "検出（今回の再検査結果、番号は伏せ字）",
        "Findings (rescanned now; numbers masked)",
    ),
    "held.findings_unavailable": ("再検査できませんでした: {detail}", "Could not rescan: {detail}"),
    "held.location": ("場所", "Location"),
    "held.masked": ("表示（伏せ字）", "Shown as (masked)"),
    "held.release": ("保留を解除して送信", "Release (send it on)"),
    "held.discard": ("破棄", "Discard"),
    "held.release_help": (
        "次ホップへ送信し、操作者・日時・コメントを送信ログに記録します。",
        "Sends it to the next hop and records who, when and your comment in the send log.",
    ),
    "held.discard_help": (
        "メールを削除し、操作者・日時・コメントを送信ログに記録します。元に戻せません。",
        "Deletes the message and records who, when and your comment in the send log. Cannot be undone.",
    ),
    "held.released": (
        "送信しました（次ホップの応答: {reply}）。",
        "Released (next hop replied: {reply}).",
    ),
    "held.discarded": ("破棄しました。", "Discarded."),
    "held.release_failed": (
        "送信できませんでした。メールは保留されたままです: {detail}",
        "Could not send it; the message stays held: {detail}",
    ),
    "held.gone": ("このメールはもう保留されていません。", "This message is no longer held."),
    "held.busy": (
        "ほかの担当者がこのメールを解除または破棄しているところです。少し待ってから一覧を確認してください。",
        "Someone else is releasing or discarding this message right now; "
        "check the list again in a moment.",
    ),
    "held.readonly": (
        "解除・破棄は承認者以上の権限が必要です。",
        "Release and discard need the approver role.",
    ),
    "held.mail_summary": ("検出の要約", "Findings summary"),
    "held.audit_key": ("監査キー", "Audit key"),
    "held.sum.mynumber_distinct": ("個人番号（異なる番号）", "My Numbers (distinct)"),
    "held.sum.high": ("確度 高", "high confidence"),
    "held.sum.medium": ("確度 中", "medium confidence"),
    "held.sum.low": ("確度 低", "low confidence"),
    "held.sum.attachments": ("添付ファイル", "attachments"),
    "held.rule": ("規則", "Rule"),
    # dashboard
    "dash.title": ("概況", "Dashboard"),
    "dash.period": ("直近 {days} 日", "Last {days} days"),
    "dash.freemail_sends": (
        "フリーメール・携帯への添付送信（日別）",
        "Attachments sent to free mail / mobile addresses per day",
    ),
    "dash.external_sends": (
        "外部ドメインへの添付送信（日別）",
        "Attachment sends to external domains, per day",
    ),
    "dash.findings": ("検出のあったメール（日別）", "Messages with findings, per day"),
    "dash.lookalike": (
        "なりすまし疑いで拒否・保留した宛先（本来のドメイン別）",
        "Lookalike recipients refused or held, by the domain meant",
    ),
    "dash.top_senders": (
        "外部への添付送信が多い送信者",
        "Senders with the most external attachment sends",
    ),
    "dash.held_now": ("保留中", "Held now"),
    "dash.no_data": ("この期間の記録はありません。", "No entries in this period."),
    "dash.count": ("件数", "count"),
    "dash.total": ("合計 {n} 件", "{n} in all"),
    # allowlist
    "allow.title": ("許可ドメイン", "Allowlist"),
    "allow.own": ("自組織ドメイン", "Own domains"),
    "allow.partner": ("取引先ドメイン", "Partner domains"),
    "allow.mynumber": ("個人番号の受領可", "entitled to My Numbers"),
    "allow.file": ("設定ファイル: {path}", "File: {path}"),
    "allow.add": ("追加", "Add"),
    "allow.remove": ("削除", "Remove"),
    "allow.domain": ("ドメイン", "Domain"),
    "allow.section": ("区分", "Section"),
    "allow.mynumber_tag": (
        "個人番号の受領を許可する取引先",
        "Partner entitled to receive My Numbers",
    ),
    "allow.confirm": ("警告を確認したうえで追加する", "I have read the warning; add it anyway"),
    "allow.warning_title": (
        "注意: このドメインを追加する前に確認してください（入力ミスは他人を信頼することになります）。",
        "Check before adding this domain (a typo here would trust a stranger).",
    ),
    "allow.added": ("{domain} を追加しました。", "{domain} added."),
    "allow.removed": ("{domain} を削除しました。", "{domain} removed."),
    "allow.invalid": ("追加できません: {detail}", "Cannot add: {detail}"),
    "allow.not_recorded": (
        "変更は保存しましたが、送信ログに記録できませんでした: {detail}",
        "The change was made but could not be recorded in the send log: {detail}",
    ),
    "allow.external": (
        "確認済みの外部ドメイン（なりすまし判定しない）",
        "Checked external domains (never flagged)",
    ),
    "allow.section.own": ("自組織", "own"),
    "allow.section.partner": ("取引先", "partner"),
    "allow.section.external": ("確認済み外部", "checked external"),
    "allow.section.freemail": ("フリーメール・携帯", "free mail / mobile"),
    "allow.freemail": (
        "追加のフリーメール・携帯・プロバイダのドメイン",
        "More free-mail, mobile and ISP domains",
    ),
    "allow.freemail_hint": (
        "gmail.com、docomo.ne.jp など主なドメインは組み込み済みです。ここには追加分だけを登録します。",
        "gmail.com, docomo.ne.jp and the other common ones are built in; list additions here.",
    ),
    "allow.not_listed": ("{domain} は登録されていません。", "{domain} is not listed."),
    "allow.empty": ("登録なし", "none listed"),
    "allow.admin_only": ("変更は管理者のみ行えます。", "Only administrators can change the list."),
    "allow.error": (
        "許可ドメインを読み込めません: {detail}",
        "Cannot read the allowlist: {detail}",
    ),
    # chain verification
    "nav.verify": ("改ざん検証", "Integrity"),
    "verify.title": ("送信ログの改ざん検証", "Send-log integrity check"),
    "verify.help": (
        "送信ログはハッシュチェーンで連結されています。全件を再計算し、変更・削除・挿入された最初の記録を示します（dlp log verify と同じ処理です）。",
        "The send log is a hash chain. This recomputes it and names the first entry that was changed, deleted or inserted (the same check as dlp log verify).",
    ),
    "verify.run": ("検証する", "Verify now"),
    "verify.ok": (
        "改ざんはありません: {n} 件を検証しました（{s} 秒）。",
        "Intact: {n} entries verified ({s} s).",
    ),
    "verify.broken": (
        "送信ログが改ざんされています。最初の異常:",
        "The send log has been tampered with. First problem:",
    ),
    "verify.head": ("チェーンの先頭", "Chain head"),
    "verify.checkpoint": (
        "期限切れ削除のチェックポイント（削除件数）",
        "Purge checkpoint (entries purged)",
    ),
    "verify.note_head": (
        "この先頭ハッシュを別の場所（チケット、印刷物）に控えておくと、以降の全記録を書き換える改ざんも発見できます。署名鍵（[sendlog] head_key_file）を設定すると、先頭は自動で署名・記録され、照合されます。",
        "Keep this head hash elsewhere (a ticket, a printout): then even a rewrite of every later entry is caught. With a head key ([sendlog] head_key_file) the head is signed, recorded and checked automatically.",
    ),
    "verify.heads_ok": (
        "署名済みのチェーン先頭 {n} 件はすべて現在のチェーンと一致しています。",
        "All {n} signed chain heads agree with the chain.",
    ),
    "verify.heads_none": (
        "署名済みのチェーン先頭はまだありません。",
        "No signed chain heads yet.",
    ),
    "verify.heads_recorded": (
        "今回の先頭を署名し、記録しました（{line} 行目）。",
        "This head was signed and recorded (line {line}).",
    ),
    "verify.heads_bad": (
        "送信ログが書き換えられています（データベースの外に署名して記録した先頭と一致しません）:",
        "The send log was rewritten (it contradicts a chain head signed and kept outside the database):",
    ),
    "verify.heads_error": (
        "チェーン先頭を署名・記録できませんでした: {detail}",
        "The chain head could not be signed and recorded: {detail}",
    ),
    # users
    "users.title": ("利用者", "Users"),
    "users.name": ("利用者名", "User name"),
    "users.role": ("役割", "Role"),
    "users.created": ("作成日時", "Created"),
    "users.password_changed": ("パスワード変更日時", "Password changed"),
    "users.add": ("利用者を追加", "Add user"),
    "users.remove": ("削除", "Remove"),
    "users.set_role": ("役割を変更", "Change role"),
    "users.new_password": (
        "新しいパスワード（10文字以上）",
        "New password (10 characters or more)",
    ),
    "users.current_password": ("現在のパスワード", "Current password"),
    "users.reset_password": ("パスワード再設定", "Reset password"),
    "users.added": ("{name} を追加しました。", "{name} added."),
    "users.removed": ("{name} を削除しました。", "{name} removed."),
    "users.updated": ("{name} を更新しました。", "{name} updated."),
    "users.unlocked": ("{name} のロックを解除しました。", "{name} unlocked."),
    "users.locked": ("{until} までロック中", "locked until {until}"),
    "users.unlock": ("ロック解除", "Unlock"),
    "users.error": ("できませんでした: {detail}", "Not done: {detail}"),
    "users.last_admin": (
        "最後の管理者は削除・降格できません。",
        "The last administrator cannot be removed or demoted.",
    ),
    "users.self": ("自分自身は削除できません。", "You cannot remove yourself."),
    "users.wrong_password": ("現在のパスワードが違います。", "The current password is wrong."),
    "users.password_changed_ok": (
        "パスワードを変更しました。もう一度ログインしてください。",
        "Password changed. Please sign in again.",
    ),
    "users.roles_help": (
        "閲覧者: 閲覧のみ / 承認者: 保留メールの解除・破棄 / 管理者: 許可ドメインと利用者の管理",
        "reviewer: read only / approver: release and discard held mail / admin: allowlist and users",
    ),
}


def both(key: str, **values: Any) -> tuple[str, str]:
    """The Japanese and the English text, for answers that may reach a script or a
    person whose language cookie is unknown (429/503)."""
    return translator("ja")(key, **values), translator("en")(key, **values)


def translator(lang: str) -> Translator:
    index = 1 if lang == "en" else 0

    def t(key: str, **values: Any) -> str:
        pair = MESSAGES.get(key)
        if pair is None:
            return key  # visible in the page, and caught by the catalogue test
        text = pair[index]
        return text.format(**values) if values else text

    return t
