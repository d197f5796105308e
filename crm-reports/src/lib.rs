//! # crm-reports: the engine's reports as people use them
//!
//! The key design decision: **the core returns typed rows; rendering is a thin layer here.** Every report of
//! `crm_core` (profitability, the campaign report and its funnel, campaign progress, open items, balances, the
//! pipeline funnel) is a `Serialize` value, so it becomes JSON with [`to_json`] and CSV with [`to_csv`] (flat rows)
//! or the report-specific writers; the charts are SVG strings drawn with `plotters` (SVG backend only, so no system
//! fonts are needed: the viewer renders the text).
//!
//! Money stays exact in CSV and JSON (decimal strings); only the chart geometry uses floating point.

use crm_core::commerce::send::SendStatus;
use crm_core::commerce::{
    AttributionReport, CampaignReport, OutcomeKind, ProfitReport, Progress, UpliftReport,
};
use crm_core::store::Funnel;
use plotters::prelude::*;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::Serialize;

/// What can go wrong while rendering.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OutputError {
    /// Writing CSV failed.
    #[error("writing CSV failed: {0}")]
    Csv(String),
    /// Writing JSON failed.
    #[error("writing JSON failed: {0}")]
    Json(String),
    /// Drawing a chart failed.
    #[error("drawing the chart failed: {0}")]
    Chart(String),
}

/// The result type of this crate.
pub type Result<T, E = OutputError> = std::result::Result<T, E>;

/// Any report as pretty JSON (decimals as exact strings).
pub fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| OutputError::Json(e.to_string()))
}

/// Flat rows (every field a scalar or an option of one) as CSV with a header row.
///
/// ```
/// use crm_core::commerce::ProfitRow;
/// let row = ProfitRow {
///     key: Some("A".into()), label: None, bucket: None, revenue: "10.5".parse().unwrap(), cost: "4".parse().unwrap(),
///     gross_profit: "6.5".parse().unwrap(), margin_pct: Some("61.90".parse().unwrap()), invoices: 2,
///     average_invoice: Some("5.25".parse().unwrap()), previous_gross_profit: None, change_pct: None,
/// };
/// let csv = crm_reports::to_csv(&[row]).unwrap();
/// assert!(csv.starts_with("key,label,bucket,revenue,cost,gross_profit,margin_pct,invoices,average_invoice"));
/// assert!(csv.contains("A,,,10.5,4,6.5,61.90,2,5.25,,"));
/// ```
pub fn to_csv<T: Serialize>(rows: &[T]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.serialize(r)
            .map_err(|e| OutputError::Csv(e.to_string()))?;
    }
    written(w)
}

/// The profitability report's rows as CSV, with the reporting currency as a first column.
pub fn profitability_csv(report: &ProfitReport) -> Result<String> {
    let body = to_csv(&report.rows)?;
    let mut out = String::with_capacity(body.len() + 16 * report.rows.len());
    for (i, line) in body.lines().enumerate() {
        out.push_str(if i == 0 {
            "currency"
        } else {
            report.currency.code()
        });
        out.push(',');
        out.push_str(line);
        out.push('\n');
    }
    Ok(out)
}

/// The text a CSV writer wrote.
fn written(w: csv::Writer<Vec<u8>>) -> Result<String> {
    let bytes = w
        .into_inner()
        .map_err(|e| OutputError::Csv(e.to_string()))?;
    String::from_utf8(bytes).map_err(|e| OutputError::Csv(e.to_string()))
}

fn metric_rows(pairs: &[(&str, String)]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(["metric", "value"])
        .map_err(|e| OutputError::Csv(e.to_string()))?;
    for (k, v) in pairs {
        w.write_record([*k, v.as_str()])
            .map_err(|e| OutputError::Csv(e.to_string()))?;
    }
    written(w)
}

fn opt(d: Option<Decimal>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// The campaign report as `metric,value` CSV (amounts in the report's currency).
pub fn campaign_csv(r: &CampaignReport) -> Result<String> {
    let mut pairs = vec![
        ("campaign", r.name.clone()),
        ("currency", r.currency.code().to_string()),
        ("targets", r.targets.to_string()),
        ("reached", r.reached.to_string()),
        ("interested", r.interested.to_string()),
        ("leads", r.leads.to_string()),
        ("won", r.won.to_string()),
        ("invoiced_customers", r.invoiced_customers.to_string()),
        ("revenue", r.revenue.to_string()),
        ("cost_of_goods", r.cost_of_goods.to_string()),
        ("gross_profit", r.gross_profit.to_string()),
        ("campaign_cost", r.campaign_cost.to_string()),
        ("net_profit", r.net_profit.to_string()),
        ("roi_pct", opt(r.roi_pct)),
    ];
    let conv: Vec<(String, String)> = r
        .funnel
        .iter()
        .skip(1)
        .map(|s| (format!("conversion_{}_pct", s.step), opt(s.conversion_pct)))
        .collect();
    let conv_refs: Vec<(&str, String)> =
        conv.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    pairs.extend(conv_refs);
    metric_rows(&pairs)
}

/// The attribution report side by side: one row per campaign (by name, unattributed last), one column of credited
/// gross profit per model in the report's order, amounts exact in the report's currency.
///
/// ```
/// use crm_core::commerce::{AttributionReport, AttributionRow, Model, Period};
/// let row = |model: &str, name: &str, gp: &str| AttributionRow {
///     model: model.into(), campaign: None, name: name.into(), sales: 1, gross_profit: gp.parse().unwrap(),
/// };
/// let r = AttributionReport {
///     period: Period::year(2026).unwrap(), lookback_days: 90,
///     currency: crm_core::money::Currency::parse("EUR").unwrap(),
///     models: vec![Model::FirstTouch, Model::Linear], sales: 2, gross_profit: "300".parse().unwrap(),
///     rows: vec![row("first_touch", "Spring", "300"), row("first_touch", "unattributed", "0"),
///                row("linear", "Spring", "150.5"), row("linear", "Autumn", "149.5"), row("linear", "unattributed", "0")],
/// };
/// let csv = crm_reports::attribution_csv(&r).unwrap();
/// assert_eq!(csv, "campaign,currency,first_touch,linear\nAutumn,EUR,0,149.5\nSpring,EUR,300,150.5\nunattributed,EUR,0,0\n");
/// ```
pub fn attribution_csv(r: &AttributionReport) -> Result<String> {
    let labels: Vec<String> = r.models.iter().map(|m| m.label()).collect();
    // Campaigns by name, the unattributed row last.
    let mut names: Vec<(bool, String)> = r
        .rows
        .iter()
        .map(|row| (row.campaign.is_none(), row.name.clone()))
        .collect();
    names.sort();
    names.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["campaign".to_string(), "currency".to_string()];
    header.extend(labels.iter().cloned());
    w.write_record(&header)
        .map_err(|e| OutputError::Csv(e.to_string()))?;
    for (unattributed, name) in &names {
        let mut record = vec![name.clone(), r.currency.code().to_string()];
        for l in &labels {
            let v = r
                .rows
                .iter()
                .filter(|row| {
                    &row.model == l && row.campaign.is_none() == *unattributed && &row.name == name
                })
                .map(|row| row.gross_profit)
                .sum::<Decimal>();
            record.push(v.normalize().to_string());
        }
        w.write_record(&record)
            .map_err(|e| OutputError::Csv(e.to_string()))?;
    }
    written(w)
}

/// The attribution report as a bar chart: each campaign's credited gross profit under each model, grouped by
/// campaign.
pub fn attribution_chart_svg(r: &AttributionReport) -> Result<String> {
    let mut rows: Vec<_> = r.rows.iter().collect();
    rows.sort_by(|a, b| (a.campaign.is_none(), &a.name).cmp(&(b.campaign.is_none(), &b.name)));
    let bars: Vec<Bar> = rows
        .iter()
        .map(|row| Bar {
            label: format!("{} · {}", row.name, row.model),
            value: row.gross_profit,
            note: format!("{} sales", row.sales),
        })
        .collect();
    bar_chart_svg(
        &format!(
            "Attributed gross profit, {} to {}",
            r.period.from(),
            r.period.to()
        ),
        &format!("gross profit ({})", r.currency),
        &bars,
    )
}

/// The uplift report as `metric,value` CSV: both groups' outcomes, the uplifts with their bounds, the incremental
/// gross profit and ROI.
pub fn uplift_csv(r: &UpliftReport) -> Result<String> {
    let interval = |i: Option<crm_core::commerce::Interval>| {
        i.map(|i| {
            (
                i.estimate.to_string(),
                i.low.to_string(),
                i.high.to_string(),
            )
        })
        .unwrap_or_default()
    };
    let (re, re_low, re_high) = interval(r.reactivation_uplift);
    let (bo, bo_low, bo_high) = interval(r.bought_uplift);
    let pairs = vec![
        ("campaign", r.name.clone()),
        ("currency", r.currency.code().to_string()),
        ("window_from", r.window.from().to_string()),
        ("window_to", r.window.to().to_string()),
        (
            "holdout_share_pct",
            r.holdout
                .map(|h| h.share_pct().to_string())
                .unwrap_or_default(),
        ),
        ("targets", r.targets.partners.to_string()),
        ("control", r.control.partners.to_string()),
        ("targets_reactivated", r.targets.reactivated.to_string()),
        ("control_reactivated", r.control.reactivated.to_string()),
        (
            "targets_reactivation_rate",
            opt(r.targets.reactivation_rate),
        ),
        (
            "control_reactivation_rate",
            opt(r.control.reactivation_rate),
        ),
        ("reactivation_uplift", re),
        ("reactivation_uplift_low", re_low),
        ("reactivation_uplift_high", re_high),
        ("targets_bought_rate", opt(r.targets.bought_rate)),
        ("control_bought_rate", opt(r.control.bought_rate)),
        ("bought_uplift", bo),
        ("bought_uplift_low", bo_low),
        ("bought_uplift_high", bo_high),
        ("targets_gross_profit", r.targets.gross_profit.to_string()),
        ("control_gross_profit", r.control.gross_profit.to_string()),
        ("incremental_revenue", opt(r.incremental_revenue)),
        ("incremental_gross_profit", opt(r.incremental_gross_profit)),
        ("campaign_cost", r.campaign_cost.to_string()),
        ("incremental_roi_pct", opt(r.incremental_roi_pct)),
    ];
    metric_rows(&pairs)
}

/// Campaign progress (total first, then per agent) as CSV with one column per outcome.
pub fn progress_csv(rows: &[Progress]) -> Result<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec![
        "agent".to_string(),
        "targets".into(),
        "done".into(),
        "remaining".into(),
    ];
    header.extend(OutcomeKind::ALL.iter().map(|o| o.as_str().to_string()));
    header.extend(
        SendStatus::ALL
            .iter()
            .map(|s| format!("message_{}", s.as_str())),
    );
    w.write_record(&header)
        .map_err(|e| OutputError::Csv(e.to_string()))?;
    for p in rows {
        let mut rec = vec![
            p.agent
                .map(|a| a.to_string())
                .unwrap_or_else(|| "total".into()),
            p.targets.to_string(),
            p.done.to_string(),
            p.remaining.to_string(),
        ];
        rec.extend(
            OutcomeKind::ALL
                .iter()
                .map(|o| p.outcomes.get(o).copied().unwrap_or(0).to_string()),
        );
        rec.extend(
            SendStatus::ALL
                .iter()
                .map(|s| p.messages.get(s).copied().unwrap_or(0).to_string()),
        );
        w.write_record(&rec)
            .map_err(|e| OutputError::Csv(e.to_string()))?;
    }
    written(w)
}

/// One bar of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    /// Its label.
    pub label: String,
    /// Its value.
    pub value: Decimal,
    /// Text written after the value (a percentage, a count).
    pub note: String,
}

fn f(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn chart_err<E: std::fmt::Display>(e: E) -> OutputError {
    OutputError::Chart(e.to_string())
}

/// A horizontal bar chart as an SVG document: one bar per item, top to bottom, labelled with its name and value.
pub fn bar_chart_svg(title: &str, axis: &str, bars: &[Bar]) -> Result<String> {
    let mut svg = String::new();
    {
        let n = bars.len().max(1);
        let height = 110 + 30 * n as u32;
        let root = SVGBackend::with_string(&mut svg, (960, height)).into_drawing_area();
        root.fill(&WHITE).map_err(chart_err)?;
        let lo = bars.iter().map(|b| f(b.value)).fold(0.0, f64::min);
        let hi = bars.iter().map(|b| f(b.value)).fold(0.0, f64::max);
        let span = (hi - lo).max(1.0);
        let (lo, hi) = (lo - span * 0.02, hi + span * 0.25);
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(10)
            .build_cartesian_2d(lo..hi, 0f64..n as f64)
            .map_err(chart_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_desc(axis)
            .draw()
            .map_err(chart_err)?;
        let top = n as f64;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = top - i as f64;
                let color = if b.value.is_sign_negative() {
                    RGBColor(200, 80, 70)
                } else {
                    RGBColor(70, 120, 190)
                };
                Rectangle::new([(0.0, y - 0.8), (f(b.value), y - 0.2)], color.filled())
            }))
            .map_err(chart_err)?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let y = top - i as f64;
                let text = if b.note.is_empty() {
                    format!("{}  {}", b.label, b.value)
                } else {
                    format!("{}  {}  ({})", b.label, b.value, b.note)
                };
                Text::new(
                    text,
                    (f(b.value).max(0.0) + span * 0.01, y - 0.35),
                    ("sans-serif", 13).into_font(),
                )
            }))
            .map_err(chart_err)?;
        root.present().map_err(chart_err)?;
    }
    Ok(svg)
}

/// Gross profit per customer (or group): the report's rows as bars, in the report's order (rank it top N first).
pub fn profit_chart_svg(report: &ProfitReport, title: &str) -> Result<String> {
    let bars: Vec<Bar> = report
        .rows
        .iter()
        .map(|r| Bar {
            label: r
                .label
                .clone()
                .or_else(|| r.key.clone())
                .unwrap_or_else(|| "(none)".into()),
            value: r.gross_profit,
            note: r
                .margin_pct
                .map(|m| format!("margin {m}%"))
                .unwrap_or_default(),
        })
        .collect();
    bar_chart_svg(title, &format!("gross profit ({})", report.currency), &bars)
}

/// Return on investment per campaign.
pub fn roi_chart_svg(reports: &[CampaignReport]) -> Result<String> {
    let bars: Vec<Bar> = reports
        .iter()
        .map(|r| Bar {
            label: r.name.clone(),
            value: r.roi_pct.unwrap_or_default(),
            note: format!("net profit {} {}", r.net_profit, r.currency),
        })
        .collect();
    bar_chart_svg("Campaign ROI", "ROI (%)", &bars)
}

/// A campaign's funnel: targets → reached → interested → leads → won → invoiced, with step conversions.
pub fn campaign_funnel_svg(r: &CampaignReport) -> Result<String> {
    let bars: Vec<Bar> = r
        .funnel
        .iter()
        .map(|s| Bar {
            label: s.step.clone(),
            value: Decimal::from(s.count),
            note: s
                .conversion_pct
                .map(|c| format!("{c}% of the step before"))
                .unwrap_or_default(),
        })
        .collect();
    bar_chart_svg(&format!("Campaign funnel: {}", r.name), "partners", &bars)
}

/// A pipeline's funnel: leads that reached each stage, then won and lost.
pub fn pipeline_funnel_svg(funnel: &Funnel, title: &str) -> Result<String> {
    let mut bars: Vec<Bar> = funnel
        .steps
        .iter()
        .map(|(_, name, n)| Bar {
            label: name.clone(),
            value: Decimal::from(*n),
            note: String::new(),
        })
        .collect();
    bars.push(Bar {
        label: "won".into(),
        value: Decimal::from(funnel.won),
        note: funnel
            .win_rate()
            .map(|w| format!("win rate {w}%"))
            .unwrap_or_default(),
    });
    bars.push(Bar {
        label: "lost".into(),
        value: Decimal::from(funnel.lost),
        note: String::new(),
    });
    bar_chart_svg(title, "leads", &bars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crm_core::commerce::{
        finish_campaign, CampaignSums, GroupBy, Period, ProfitQuery, ProfitRow,
    };
    use crm_core::id::CampaignId;
    use crm_core::money::Currency;
    use rust_decimal_macros::dec;

    fn report() -> CampaignReport {
        let s = CampaignSums {
            targets: 10,
            reached: 6,
            outcomes: [(OutcomeKind::Interested, 3)].into_iter().collect(),
            leads: 3,
            won: 2,
            invoiced_customers: 2,
            revenue_units: 10_000_000,
            cost_units: 6_000_000,
            campaign_cost_units: 1_000_000,
        };
        finish_campaign(
            CampaignId::new(),
            "Winback, \"spring\"",
            None,
            Currency::parse("RON").unwrap(),
            &s,
        )
    }

    #[test]
    fn campaign_csv_is_exact_and_quoted() {
        let csv = campaign_csv(&report()).unwrap();
        assert!(
            csv.starts_with("metric,value\ncampaign,\"Winback, \"\"spring\"\"\"\n"),
            "{csv}"
        );
        assert!(csv.contains("\nnet_profit,300\n"), "{csv}");
        assert!(csv.contains("\nroi_pct,300.00\n"), "{csv}");
        assert!(csv.contains("\nconversion_reached_pct,60.00\n"), "{csv}");
    }

    #[test]
    fn attribution_and_uplift_render() {
        use crm_core::commerce::{
            finish_uplift, AttributionReport, AttributionRow, Channel, Confidence, GroupSums,
            Model, NewCampaign, OutcomeQuery, OutcomeSums,
        };
        let eur = Currency::parse("EUR").unwrap();
        let row = |model: &str, name: &str, gp| AttributionRow {
            model: model.into(),
            campaign: (name != "unattributed").then(CampaignId::new),
            name: name.into(),
            sales: 3,
            gross_profit: gp,
        };
        let r = AttributionReport {
            period: Period::year(2026).unwrap(),
            lookback_days: 30,
            currency: eur,
            models: vec![Model::LastTouch, Model::TimeDecay { half_life_days: 7 }],
            sales: 3,
            gross_profit: dec!(90),
            rows: vec![
                row("last_touch", "Mail & call", dec!(90)),
                row("time_decay_7d", "Mail & call", dec!(-10)),
                row("time_decay_7d", "unattributed", dec!(100)),
            ],
        };
        let csv = attribution_csv(&r).unwrap();
        assert!(
            csv.starts_with("campaign,currency,last_touch,time_decay_7d\n"),
            "{csv}"
        );
        assert!(csv.contains("Mail & call,EUR,90,-10\n"), "{csv}");
        assert!(csv.ends_with("unattributed,EUR,0,100\n"), "{csv}");
        let svg = attribution_chart_svg(&r).unwrap();
        assert!(
            svg.starts_with("<svg")
                && svg.contains("time_decay_7d")
                && svg.contains("Mail &amp; call")
        );
        let d = |m, day| chrono::NaiveDate::from_ymd_opt(2026, m, day).unwrap();
        let campaign = NewCampaign {
            name: "Winback".into(),
            channel: Channel::Email,
            period: Period::new(d(1, 1), d(3, 31)).unwrap(),
            owner: crm_core::id::UserId::new(),
            agents: vec![],
            script: None,
            budget: None,
            criteria: None,
        }
        .build(crm_core::id::TenantId::new(), chrono::Utc::now())
        .unwrap()
        .0;
        let q = OutcomeQuery {
            window: Period::new(d(2, 1), d(2, 28)).unwrap(),
            promoted: vec![],
            reporting: eur,
        };
        let group = |n, x| GroupSums {
            partners: n,
            reactivated: x,
            bought: 0,
            revenue_units: 0,
            cost_units: 0,
        };
        // Newcombe's example (a): 56 of 70 against 48 of 80.
        let sums = OutcomeSums {
            targets: group(70, 56),
            holdout: group(80, 48),
        };
        let u = finish_uplift(&campaign, &q, Confidence::P95, &sums, 0).unwrap();
        let csv = uplift_csv(&u).unwrap();
        assert!(csv.contains("reactivation_uplift,0.2\n"), "{csv}");
        assert!(csv.contains("reactivation_uplift_low,0.052431\n"), "{csv}");
        assert!(csv.contains("incremental_roi_pct,\n"), "{csv}");
    }

    #[test]
    fn json_keeps_decimals_as_strings() {
        let r = report();
        let json = to_json(&r).unwrap();
        assert!(json.contains("\"gross_profit\": \"400\""), "{json}");
        assert!(json.contains("\"roi_pct\": \"300.00\""), "{json}");
        let back: CampaignReport = serde_json::from_str(&json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn charts_are_svg_with_every_label() {
        let r = report();
        for svg in [
            campaign_funnel_svg(&r).unwrap(),
            roi_chart_svg(std::slice::from_ref(&r)).unwrap(),
        ] {
            assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
            assert!(svg.trim_end().ends_with("</svg>"));
        }
        let funnel = campaign_funnel_svg(&r).unwrap();
        for step in [
            "targets",
            "reached",
            "interested",
            "leads",
            "won",
            "invoiced",
        ] {
            assert!(funnel.contains(step), "{step} missing");
        }
        let d = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
        let pr = ProfitReport {
            query: ProfitQuery::by(GroupBy::Customer, Period::new(d, d).unwrap()),
            currency: Currency::parse("EUR").unwrap(),
            rows: vec![ProfitRow {
                key: Some("k".into()),
                label: Some("Loss & Co".into()),
                bucket: None,
                revenue: dec!(10),
                cost: dec!(15),
                gross_profit: dec!(-5),
                margin_pct: Some(dec!(-50)),
                invoices: 1,
                average_invoice: Some(dec!(10)),
                previous_gross_profit: None,
                change_pct: None,
            }],
        };
        let svg = profit_chart_svg(&pr, "Top customers").unwrap();
        assert!(svg.contains("Loss &amp; Co"), "labels are escaped");
        let csv = profitability_csv(&pr).unwrap();
        assert!(csv.starts_with("currency,key,label"), "{csv}");
        assert!(
            csv.contains("EUR,k,Loss & Co,,10,15,-5,-50,1,10,,"),
            "{csv}"
        );
        let p = Funnel {
            steps: vec![],
            won: 3,
            lost: 1,
        };
        assert!(pipeline_funnel_svg(&p, "Pipeline")
            .unwrap()
            .contains("win rate 75%"));
    }

    #[test]
    fn open_items_and_balances_are_flat_csv() {
        use crm_core::commerce::{Balance, DocumentKind, OpenItem};
        let ron = Currency::parse("RON").unwrap();
        let item = OpenItem {
            document: crm_core::id::DocumentId::new(),
            kind: DocumentKind::Invoice,
            number: "F-1".into(),
            issue_date: chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap(),
            due_date: None,
            currency: ron,
            total: dec!(100.50),
            settled: dec!(40),
            open: dec!(60.50),
            days_overdue: 0,
        };
        let csv = to_csv(std::slice::from_ref(&item)).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next(),
            Some(
                "document,kind,number,issue_date,due_date,currency,total,settled,open,days_overdue"
            )
        );
        assert_eq!(
            lines.next().map(|l| l.split_once(',').unwrap().1),
            Some("invoice,F-1,2026-01-05,,RON,100.50,40,60.50,0")
        );
        let b = Balance {
            currency: ron,
            receivable: dec!(60.50),
            payable: dec!(0),
            overdue: dec!(0),
        };
        assert_eq!(
            to_csv(&[b]).unwrap(),
            "currency,receivable,payable,overdue\nRON,60.50,0,0\n"
        );
    }

    #[test]
    fn progress_has_a_column_per_outcome() {
        let p = Progress {
            agent: None,
            targets: 2,
            done: 1,
            remaining: 1,
            outcomes: [(OutcomeKind::WrongContact, 1)].into_iter().collect(),
            messages: [(SendStatus::Bounced, 2)].into_iter().collect(),
        };
        let csv = progress_csv(&[p]).unwrap();
        assert_eq!(
            csv,
            "agent,targets,done,remaining,no_answer,call_back,interested,not_interested,wrong_contact,\
             message_queued,message_delivered,message_opened,message_bounced,message_unsubscribed,\
             message_no_address,message_no_consent,message_failed\n\
             total,2,1,1,0,0,0,0,1,0,0,0,2,0,0,0,0\n"
        );
    }
}
