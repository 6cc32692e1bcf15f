"""The omnichannel maturity grid (9 dimensions × 5 levels), English and Bahasa Indonesia,
from shared/reference/domain.md. Data, not logic: the assessment pages and API render it."""
from __future__ import annotations

LEVELS = [
    {"en": "Single channel", "id": "Kanal tunggal"},
    {"en": "Multi channel", "id": "Multi kanal"},
    {"en": "Cross channel", "id": "Lintas kanal"},
    {"en": "Omni channel", "id": "Omni kanal"},
    {"en": "Optimized omni channel", "id": "Omni kanal teroptimasi"},
]

DIMENSIONS: list[dict] = [
    {"code": "strategy", "en": "Business strategy", "id": "Strategi bisnis", "levels": [
        {"en": "No omnichannel strategy", "id": "Belum ada strategi omnichannel"},
        {"en": "Vision and strategy exist", "id": "Visi dan strategi sudah ada"},
        {"en": "Strategy mapped into actions and implementation", "id": "Strategi dipetakan ke dalam aksi dan implementasi"},
        {"en": "Improvement driven by analytics and CEM KPIs", "id": "Perbaikan didorong oleh analitik dan KPI CEM"},
        {"en": "Optimal, well-targeted strategy", "id": "Strategi optimal dan tepat sasaran"},
    ]},
    {"code": "data", "en": "Data-driven approach", "id": "Pendekatan berbasis data", "levels": [
        {"en": "No plan to collect or use channel data", "id": "Belum ada rencana mengumpulkan atau memakai data kanal"},
        {"en": "Basic data-collection infrastructure", "id": "Infrastruktur dasar pengumpulan data"},
        {"en": "Able to produce actionable insights", "id": "Mampu menghasilkan wawasan yang dapat ditindaklanjuti"},
        {"en": "Analytics used consistently for customer insight", "id": "Analitik dipakai secara konsisten untuk memahami pelanggan"},
        {"en": "Optimal use of analytics, insight and sentiment to improve experience and efficiency",
         "id": "Pemakaian analitik, wawasan dan sentimen secara optimal untuk memperbaiki pengalaman dan efisiensi"},
    ]},
    {"code": "technology", "en": "Technology", "id": "Teknologi", "levels": [
        {"en": "No technology-integration strategy", "id": "Belum ada strategi integrasi teknologi"},
        {"en": "Aware of technology gaps", "id": "Menyadari kesenjangan teknologi"},
        {"en": "Technology gaps removed", "id": "Kesenjangan teknologi sudah diatasi"},
        {"en": "Omnichannel built on an enterprise architecture", "id": "Omnichannel dibangun di atas arsitektur enterprise"},
        {"en": "Continuous improvement", "id": "Perbaikan berkelanjutan"},
    ]},
    {"code": "process", "en": "Business process & governance", "id": "Proses bisnis & tata kelola", "levels": [
        {"en": "No omni process or governance", "id": "Belum ada proses atau tata kelola omni"},
        {"en": "Aware of process gaps", "id": "Menyadari kesenjangan proses"},
        {"en": "Multichannel process gaps closed; new governance identified", "id": "Kesenjangan proses multikanal ditutup; tata kelola baru diidentifikasi"},
        {"en": "Processes adapted to omnichannel operation", "id": "Proses disesuaikan untuk operasi omnichannel"},
        {"en": "Continuous process improvement", "id": "Perbaikan proses berkelanjutan"},
    ]},
    {"code": "leadership", "en": "Leadership & organisation", "id": "Kepemimpinan & organisasi", "levels": [
        {"en": "Teams work in silos", "id": "Tim bekerja dalam silo"},
        {"en": "Leadership alignment and team responsibilities identified", "id": "Keselarasan pimpinan dan tanggung jawab tim diidentifikasi"},
        {"en": "Each team's obligations communicated and implemented", "id": "Kewajiban tiap tim dikomunikasikan dan dijalankan"},
        {"en": "Organisation structured to deliver omnichannel", "id": "Organisasi disusun untuk menghadirkan omnichannel"},
        {"en": "Leadership keeps reviewing structure and obligations", "id": "Pimpinan terus meninjau struktur dan kewajiban"},
    ]},
    {"code": "roadmap", "en": "Roadmap & planning", "id": "Peta jalan & perencanaan", "levels": [
        {"en": "No roadmap or plan", "id": "Belum ada peta jalan atau rencana"},
        {"en": "Roadmap, plan and timeline identified and aligned with strategy", "id": "Peta jalan, rencana dan jadwal diidentifikasi dan selaras dengan strategi"},
        {"en": "Omnichannel implemented for some journeys", "id": "Omnichannel diterapkan untuk sebagian perjalanan pelanggan"},
        {"en": "All omnichannel journeys implemented", "id": "Semua perjalanan omnichannel diterapkan"},
        {"en": "Continuous improvement of roadmap and plan", "id": "Perbaikan peta jalan dan rencana secara berkelanjutan"},
    ]},
    {"code": "people", "en": "Human resources", "id": "Sumber daya manusia", "levels": [
        {"en": "Role descriptions and pay set per channel, in silos", "id": "Deskripsi peran dan remunerasi ditetapkan per kanal, dalam silo"},
        {"en": "Guidelines and pay adjusted to cross-channel results", "id": "Pedoman dan remunerasi disesuaikan dengan hasil lintas kanal"},
        {"en": "New policies from omnichannel results tied to strategic goals", "id": "Kebijakan baru dari hasil omnichannel dikaitkan dengan tujuan strategis"},
        {"en": "Pay and promotion tied directly to omnichannel results", "id": "Remunerasi dan promosi dikaitkan langsung dengan hasil omnichannel"},
        {"en": "HR policy refined by metrics on customer-experience goals", "id": "Kebijakan SDM disempurnakan dengan metrik tujuan pengalaman pelanggan"},
    ]},
    {"code": "metrics", "en": "Metrics & KPIs", "id": "Metrik & KPI", "levels": [
        {"en": "No metrics for omnichannel effectiveness", "id": "Belum ada metrik efektivitas omnichannel"},
        {"en": "KPIs per individual channel", "id": "KPI per kanal"},
        {"en": "New cross-channel KPIs aligned with customer experience", "id": "KPI lintas kanal baru yang selaras dengan pengalaman pelanggan"},
        {"en": "Omnichannel KPIs for business and channel effectiveness", "id": "KPI omnichannel untuk efektivitas bisnis dan kanal"},
        {"en": "Omnichannel metrics for ROI and CSAT per channel and for the whole experience",
         "id": "Metrik omnichannel untuk ROI dan CSAT per kanal dan untuk keseluruhan pengalaman"},
    ]},
    {"code": "budget", "en": "Budget", "id": "Anggaran", "levels": [
        {"en": "No budget for a seamless omnichannel experience", "id": "Belum ada anggaran untuk pengalaman omnichannel yang mulus"},
        {"en": "Omnichannel budget for some departments", "id": "Anggaran omnichannel untuk sebagian departemen"},
        {"en": "Budget approved by all cross-functional stakeholders", "id": "Anggaran disetujui semua pemangku kepentingan lintas fungsi"},
        {"en": "Budget set across the whole organisation", "id": "Anggaran ditetapkan untuk seluruh organisasi"},
        {"en": "Budget re-evaluated by metrics to optimise investment", "id": "Anggaran dievaluasi ulang dengan metrik untuk mengoptimalkan investasi"},
    ]},
]

DIMENSION_CODES = [d["code"] for d in DIMENSIONS]

# Which measured evidence is shown next to which dimension.
EVIDENCE_FOR = {
    "data": ["profile_completeness", "csat_coverage"],
    "technology": ["reachable_on_two_channels", "conversations_spanning_channels"],
    "metrics": ["kpi_channel_coverage", "csat_coverage", "csat_percent"],
    "process": ["conversations_spanning_channels"],
}


def text(item: dict, language: str) -> str:
    return item.get("id" if (language or "").startswith("id") else "en") or item["en"]
