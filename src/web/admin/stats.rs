//! `/admin/stats`: the card office's dashboard of card use (用卡监测) over a
//! period: cards issued and active, uses per day, by clinic, channel and
//! step, refusals by reason. Charts are SVG drawn here (no script, nothing
//! inline that the page CSP forbids), each followed by its numbers as a
//! table; `/admin/stats/card-use.csv` downloads the same period as the API's
//! CSV.

use actix_web::http::header;
use actix_web::{web, HttpRequest};
use maud::{html, Markup};
use serde::Deserialize;

use super::{page, signed_in};
use crate::domain::{monitoring_day, Grouping, Period};
use crate::request::auth::blocking;
use crate::request::State;
use crate::service::monitoring::{self, CardUseRow, Dashboard};
use crate::web::page::{Cx, PageResult};
use crate::web::Lang;

/// Days shown when the form gives none.
const DEFAULT_DAYS: u64 = 30;

#[derive(Deserialize)]
pub(super) struct RangeQuery {
    from: Option<String>,
    to: Option<String>,
}

/// The period asked for, the last [`DEFAULT_DAYS`] days when none was
/// given, or the refusal's words.
fn period(q: &RangeQuery, l: Lang) -> (Period, Option<&'static str>) {
    let today = monitoring_day(chrono::Utc::now().naive_utc());
    let default = Period::new(today - chrono::Days::new(DEFAULT_DAYS - 1), today)
        .expect("a 30-day period is valid");
    match (q.from.as_deref(), q.to.as_deref()) {
        (None | Some(""), None | Some("")) => (default, None),
        (from, to) => match Period::parse(from.unwrap_or_default(), to.unwrap_or_default()) {
            Ok(p) => (p, None),
            Err(e) => (
                default,
                Some(match e {
                    crate::domain::PeriodError::Unparseable => {
                        l.t("请输入有效的日期。", "Enter valid dates.")
                    }
                    crate::domain::PeriodError::Reversed => l.t(
                        "结束日期不能早于开始日期。",
                        "The end date is before the start date.",
                    ),
                    crate::domain::PeriodError::TooLong => {
                        l.t("时间段最长366天。", "A period is at most 366 days.")
                    }
                }),
            ),
        },
    }
}

pub(super) async fn show(
    req: HttpRequest,
    state: web::Data<State>,
    q: web::Query<RangeQuery>,
) -> PageResult {
    let cx = Cx::new(&req);
    let admin = signed_in!(req, state, cx);
    let l = cx.lang;
    let (period, error) = period(&q, l);
    let ctx = state.ctx.clone();
    let d = blocking(move || monitoring::dashboard(&mut *ctx.conn()?, period)).await?;
    let body = page(
        &cx,
        &admin,
        l.t("用卡统计", "Card use"),
        dashboard_body(&cx, &d, error),
    );
    Ok(cx.ok(body))
}

pub(super) async fn csv(
    req: HttpRequest,
    state: web::Data<State>,
    q: web::Query<RangeQuery>,
) -> PageResult {
    let cx = Cx::new(&req);
    let _admin = signed_in!(req, state, cx);
    let (period, _) = period(&q, cx.lang);
    let ctx = state.ctx.clone();
    let report =
        blocking(move || monitoring::card_use(&mut *ctx.conn()?, period, Grouping::all())).await?;
    let name = format!("card-use-{}-{}.csv", period.from(), period.to());
    Ok(actix_web::HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8; header=present")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{name}\""),
        ))
        .body(report.to_csv()))
}

fn dashboard_body(cx: &Cx, d: &Dashboard, error: Option<&str>) -> Markup {
    let l = cx.lang;
    let (from, to) = (d.period.from().to_string(), d.period.to().to_string());
    let channel_label = |r: &CardUseRow| match r.channel.flatten() {
        Some(c) => format!("{} ({})", l.channel(c.as_str()), c.national_code()),
        None => l.t("未指定", "Not given").to_string(),
    };
    let step_label = |r: &CardUseRow| match r.step.flatten() {
        Some(s) => format!("{} ({})", l.step(s), s.national_code()),
        None => l.t("未指定", "Not given").to_string(),
    };
    let clinics: Vec<(String, String, i64)> = d
        .by_clinic
        .iter()
        .map(|r| {
            let code = r.clinic_code.clone().unwrap_or_default();
            let name = r.clinic_name.clone().unwrap_or_default();
            (code.clone(), format!("{name} ({code})"), r.uses)
        })
        .collect();
    let channels: Vec<(String, String, i64)> = d
        .by_channel
        .iter()
        .map(|r| {
            let key = r.channel.flatten().map(|c| c.as_str()).unwrap_or("");
            (key.to_string(), channel_label(r), r.uses)
        })
        .collect();
    let steps: Vec<(String, String, i64)> = d
        .by_step
        .iter()
        .map(|r| {
            let key = r.step.flatten().map(|s| s.as_str()).unwrap_or("");
            (key.to_string(), step_label(r), r.uses)
        })
        .collect();
    let refusals: Vec<(String, String, i64)> = d
        .refusals
        .iter()
        .map(|r| {
            let code = r.outcome.clone().unwrap_or_default();
            (code.clone(), l.outcome(&code), r.uses)
        })
        .collect();
    html! {
        h1 { (l.t("用卡统计", "Card use")) }
        form.card-form.range method="get" action="/admin/stats" {
            @if let Some(e) = error { p.error.banner role="alert" { (e) } }
            div.field {
                label for="from" { (l.t("开始日期", "From")) }
                input #from type="date" name="from" value=(from) required;
            }
            div.field {
                label for="to" { (l.t("结束日期", "To")) }
                input #to type="date" name="to" value=(to) required;
            }
            button type="submit" { (l.t("查看", "Show")) }
            a.button.secondary #csv-download href=(format!("/admin/stats/card-use.csv?from={from}&to={to}")) {
                (l.t("下载CSV", "Download CSV"))
            }
        }
        p.muted { (l.t("按中国标准时间（UTC+8）计日。", "Days are counted in China Standard Time (UTC+8).")) }
        dl.headline {
            div { dt { (l.t("累计发卡", "Cards issued")) } dd #cards-issued { (d.cards_issued) } }
            div { dt { (l.t("正常使用的卡", "Cards active")) } dd #cards-active { (d.cards_active) } }
            div { dt { (l.t("期间用卡次数", "Uses in the period")) } dd #total-uses { (d.uses) } }
            div { dt { (l.t("期间拒绝次数", "Refused in the period")) } dd #total-refused { (d.refused) } }
        }
        div.dashboard {
        section.chart.wide {
            h2 #uses-per-day-title { (l.t("每日用卡次数", "Uses per day")) }
            (line_chart(&d.by_day, "uses-per-day-title"))
            div.scroll {
            table.list #by-day {
                caption { (l.t("每日用卡次数", "Uses per day")) }
                thead { tr { th { (l.t("日期", "Day")) } th.num { (l.t("次数", "Uses")) } } }
                tbody {
                    @for (day, n) in &d.by_day {
                        tr data-key=(day.to_string()) { td { (day.to_string()) } td.num data-uses=(n) { (n) } }
                    }
                }
            }
            }
        }
        (bar_section(l, "by-clinic", l.t("各医疗机构用卡次数", "Uses by clinic"), l.t("医疗机构", "Clinic"), &clinics))
        (bar_section(l, "by-channel", l.t("各渠道用卡次数", "Uses by channel"), l.t("渠道", "Channel"), &channels))
        (bar_section(l, "by-step", l.t("最繁忙的就诊环节", "Busiest steps of care"), l.t("就诊环节", "Step"), &steps))
        (bar_section(l, "refusals", l.t("拒绝原因", "Refusals by reason"), l.t("原因", "Reason"), &refusals))
        }
    }
}

/// Chart geometry, in SVG user units.
const W: f64 = 640.0;
const PAD_L: f64 = 48.0;
const PAD_B: f64 = 24.0;

/// A round upper bound for an axis.
fn axis_max(max: i64) -> i64 {
    if max <= 5 {
        return 5;
    }
    let mag = 10f64.powi((max as f64).log10().floor() as i32);
    let steps = [1.0, 2.0, 5.0, 10.0];
    let m = steps
        .iter()
        .map(|s| s * mag)
        .find(|v| *v >= max as f64)
        .unwrap_or(10.0 * mag);
    m as i64
}

/// Uses per day as a line, with its axis bounds and first and last day.
fn line_chart(days: &[(chrono::NaiveDate, i64)], title_id: &str) -> Markup {
    let h = 200.0;
    let top = axis_max(days.iter().map(|(_, n)| *n).max().unwrap_or(0));
    let n = days.len().max(2) as f64 - 1.0;
    let x = |i: usize| PAD_L + (W - PAD_L - 10.0) * (i as f64) / n;
    let y = |v: i64| 10.0 + (h - PAD_B - 10.0) * (1.0 - v as f64 / top as f64);
    let points: Vec<String> = days
        .iter()
        .enumerate()
        .map(|(i, (_, v))| format!("{:.1},{:.1}", x(i), y(*v)))
        .collect();
    html! {
        svg.chart viewBox=(format!("0 0 {W} {h}")) role="img" aria-labelledby=(title_id) {
            line.axis x1=(PAD_L) y1=(y(0)) x2=(W - 10.0) y2=(y(0)) {}
            line.axis x1=(PAD_L) y1="10" x2=(PAD_L) y2=(y(0)) {}
            line.grid x1=(PAD_L) y1=(y(top / 2)) x2=(W - 10.0) y2=(y(top / 2)) {}
            text.tick x=(PAD_L - 6.0) y=(y(0) + 4.0) text-anchor="end" { "0" }
            text.tick x=(PAD_L - 6.0) y=(y(top / 2) + 4.0) text-anchor="end" { (top / 2) }
            text.tick x=(PAD_L - 6.0) y=(y(top) + 4.0) text-anchor="end" { (top) }
            @if let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) {
                text.tick x=(PAD_L) y=(h - 6.0) { (first.format("%m-%d").to_string()) }
                text.tick x=(W - 10.0) y=(h - 6.0) text-anchor="end" { (last.format("%m-%d").to_string()) }
            }
            polyline.series points=(points.join(" ")) {}
            @for (i, (_, v)) in days.iter().enumerate() {
                circle.point cx=(format!("{:.1}", x(i))) cy=(format!("{:.1}", y(*v))) r="2.5" {}
            }
        }
    }
}

/// Horizontal bars, one per row (key, label, uses), and their table.
fn bar_section(
    l: Lang,
    id: &str,
    title: &str,
    what: &str,
    rows: &[(String, String, i64)],
) -> Markup {
    let title_id = format!("{id}-title");
    let row_h = 26.0;
    let label_w = 250.0;
    let h = row_h * rows.len().max(1) as f64 + 8.0;
    let top = axis_max(rows.iter().map(|r| r.2).max().unwrap_or(0));
    let bar = |v: i64| (W - label_w - 70.0) * v as f64 / top as f64;
    html! {
        section.chart {
            h2 id=(title_id) { (title) }
            @if rows.is_empty() {
                p.muted { (l.t("此期间没有记录。", "Nothing in this period.")) }
            } @else {
                svg.chart viewBox=(format!("0 0 {W} {h}")) role="img" aria-labelledby=(title_id) {
                    @for (i, (_, label, v)) in rows.iter().enumerate() {
                        @let y = 4.0 + row_h * i as f64;
                        text.label x=(label_w - 8.0) y=(y + 17.0) text-anchor="end" { (label) }
                        rect.bar x=(label_w) y=(y + 3.0) width=(format!("{:.1}", bar(*v).max(1.0))) height=(row_h - 8.0) {}
                        text.value x=(format!("{:.1}", label_w + bar(*v) + 6.0)) y=(y + 17.0) { (v) }
                    }
                }
            }
            table.list id=(id) {
                caption { (title) }
                thead { tr { th { (what) } th.num { (l.t("次数", "Uses")) } } }
                tbody {
                    @for (key, label, v) in rows {
                        tr data-key=(key) { td { (label) } td.num data-uses=(v) { (v) } }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::axis_max;

    #[test]
    fn axes_end_on_round_numbers_above_the_data() {
        assert_eq!(axis_max(0), 5);
        assert_eq!(axis_max(7), 10);
        assert_eq!(axis_max(11), 20);
        assert_eq!(axis_max(480), 500);
        assert_eq!(axis_max(501), 1000);
        assert_eq!(axis_max(1000), 1000);
    }
}
