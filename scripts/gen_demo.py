"""Generate the demo data set in data/demo/ (deterministic for a given seed).

Fictional organisations of Guangxi's industries (sugar, aluminium, machinery, automotive, new
energy, new materials, IT, biomedicine, agriculture, forestry ...) with valid generated
统一社会信用代码, universities and institutes inside and outside the region with coherent
specialities, corporate groups (one three levels deep, a university with its 校办企业),
technology needs, capabilities (about 10 % English paper abstracts), bounties of both kinds
and bids, some from the poster's own group so conflict rules have something to catch.

Files (each format on purpose, to exercise every import path):

* ``organisations.csv``  GB18030 (as exported by older Excel/WPS on Chinese Windows)
* ``needs.csv``          UTF-8 with BOM, Chinese headers
* ``capabilities.jsonl`` UTF-8, English keys
* ``bounties.csv``       UTF-8 without BOM, Chinese headers
* ``bids.csv``           UTF-8, English headers

Usage: ``python scripts/gen_demo.py [--seed 7] [--out data/demo]``. The vocabulary and the
record generators are reused by ``benchmarks/gen_scale.py``.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from service.demo_dates import DEMO_BASE_DATE  # noqa: E402
from service.validation import credit_code_check_char  # noqa: E402

# The files are written as of this date; `duijie demo` moves open bounties' closing dates by
# (load date − BASE_DATE) so they stay open (service/demo_dates.py).
BASE_DATE = DEMO_BASE_DATE
CST = timezone(timedelta(hours=8))

FIELDS: tuple[str, ...] = (
    "新一代信息技术",
    "高端装备制造",
    "新能源",
    "新材料",
    "制糖",
    "铝业",
    "机械",
    "汽车",
    "生物医药",
    "农业",
    "林业",
    "节能环保",
)

# --------------------------------------------------------------------------- geography

GX_CITIES: dict[str, str] = {
    "南宁": "450100",
    "柳州": "450200",
    "桂林": "450300",
    "梧州": "450400",
    "北海": "450500",
    "防城港": "450600",
    "钦州": "450700",
    "贵港": "450800",
    "玉林": "450900",
    "百色": "451000",
    "贺州": "451100",
    "河池": "451200",
    "来宾": "451300",
    "崇左": "451400",
}
OTHER_CITIES: dict[str, tuple[str, str]] = {
    "广州": ("广东省", "440100"),
    "深圳": ("广东省", "440300"),
    "长沙": ("湖南省", "430100"),
    "武汉": ("湖北省", "420100"),
    "北京": ("北京市", "110108"),
    "上海": ("上海市", "310110"),
    "杭州": ("浙江省", "330100"),
    "南京": ("江苏省", "320100"),
    "成都": ("四川省", "510100"),
    "西安": ("陕西省", "610100"),
    "长春": ("吉林省", "220100"),
    "昆明": ("云南省", "530100"),
    "沈阳": ("辽宁省", "210100"),
    "哈尔滨": ("黑龙江省", "230100"),
}
GX_PROVINCE_SPELLINGS = ("广西壮族自治区", "广西壮族自治区", "广西", "广西壮族自治区")

# Where each industry sits in Guangxi (first cities are the most likely).
FIELD_CITIES: dict[str, tuple[str, ...]] = {
    "制糖": ("崇左", "来宾", "南宁", "贵港", "柳州", "百色"),
    "铝业": ("百色", "南宁", "来宾", "河池", "防城港"),
    "机械": ("柳州", "玉林", "桂林", "南宁"),
    "汽车": ("柳州", "柳州", "柳州", "桂林", "玉林", "南宁"),
    "新能源": ("钦州", "北海", "防城港", "柳州", "南宁", "玉林"),
    "新材料": ("贺州", "河池", "崇左", "梧州", "南宁"),
    "新一代信息技术": ("南宁", "桂林", "北海", "柳州"),
    "高端装备制造": ("柳州", "钦州", "桂林", "南宁"),
    "生物医药": ("南宁", "桂林", "梧州", "玉林"),
    "农业": ("南宁", "百色", "钦州", "玉林", "桂林", "崇左"),
    "林业": ("梧州", "贵港", "南宁", "崇左", "贺州"),
    "节能环保": ("南宁", "柳州", "桂林"),
}
FIELD_ENTERPRISES: dict[str, int] = {
    "制糖": 20,
    "铝业": 14,
    "机械": 16,
    "汽车": 20,
    "新能源": 14,
    "新材料": 14,
    "新一代信息技术": 16,
    "高端装备制造": 10,
    "生物医药": 14,
    "农业": 12,
    "林业": 12,
    "节能环保": 6,
}
INDUSTRY_WORDS: dict[str, tuple[str, ...]] = {
    "制糖": ("糖业", "制糖", "蔗糖", "糖业发展"),
    "铝业": ("铝业", "铝材", "铝合金", "铝型材"),
    "机械": ("机械", "重工", "动力机械", "液压件"),
    "汽车": ("汽车零部件", "汽车配件", "专用汽车", "汽车科技"),
    "新能源": ("新能源", "储能科技", "电池材料", "光伏科技"),
    "新材料": ("新材料", "粉体材料", "锰业", "稀土材料"),
    "新一代信息技术": ("信息技术", "软件", "智能科技", "数据科技", "电子"),
    "高端装备制造": ("智能装备", "自动化设备", "机器人", "海工装备"),
    "生物医药": ("制药", "生物科技", "药业", "医疗器械"),
    "农业": ("农业科技", "种业", "果业", "茶业"),
    "林业": ("林产", "木业", "人造板", "林化"),
    "节能环保": ("环保科技", "环境工程", "节能科技"),
}
BRAND_FIRST = "恒华桂金鑫东润宏盛远泰德瑞嘉联源丰达安博创新宇天明广海正中永富"
BRAND_SECOND = "通力源达丰泰盛华兴科发元昌成鸿锦信隆邦航晟悦"

# --------------------------------------------------------------------------- vocabulary

Indicator = tuple[str, str, float, float]  # name, unit, low, high


@dataclass(frozen=True)
class FieldVocab:
    """Field-level vocabulary; the topic-level one is in :data:`TOPICS`."""

    methods: tuple[str, ...]
    products: tuple[str, ...]
    objects_en: tuple[str, ...]
    methods_en: tuple[str, ...]
    equipment: tuple[str, ...] = ()


VOCAB: dict[str, FieldVocab] = {
    "制糖": FieldVocab(
        methods=(
            "膜分离澄清",
            "磷浮工艺",
            "在线近红外检测",
            "渗浸压榨参数优化",
            "多效蒸发热力系统优化",
            "离子交换脱色",
            "智能煮糖控制",
            "低硫澄清工艺",
            "机器视觉品质识别",
            "复合酶法除垢",
        ),
        products=("白砂糖", "赤砂糖", "原糖", "糖蜜酒精", "蔗渣浆板"),
        objects_en=(
            "sugarcane juice clarification",
            "raw sugar crystallization",
            "bagasse valorization",
            "molasses fermentation",
            "evaporator scaling",
        ),
        methods_en=(
            "ceramic membrane filtration",
            "near-infrared spectroscopy",
            "enzymatic descaling",
            "model predictive control",
            "phosphatation flotation",
        ),
        equipment=("中试压榨机组", "陶瓷膜中试装置", "近红外在线分析仪"),
    ),
    "铝业": FieldVocab(
        methods=(
            "低温低电压铝电解",
            "在线除气精炼",
            "稀土微合金化",
            "热挤压数值模拟",
            "赤泥脱碱",
            "铝灰火法无害化",
            "激光清洗",
            "微弧氧化",
            "电磁搅拌",
            "大数据槽况诊断",
        ),
        products=("电解铝", "铝型材", "铝板带", "汽车轻量化铝部件", "氧化铝"),
        objects_en=(
            "aluminium electrolysis cells",
            "red mud",
            "Al-Mg-Si alloy extrusion",
            "aluminium dross",
        ),
        methods_en=(
            "rare-earth microalloying",
            "electromagnetic stirring",
            "thermodynamic modelling",
            "alkali leaching",
        ),
        equipment=("300kA电解槽模拟平台", "挤压中试线", "直读光谱仪"),
    ),
    "机械": FieldVocab(
        methods=(
            "有限元拓扑优化",
            "振动信号故障诊断",
            "数字孪生",
            "激光熔覆再制造",
            "机器人自动焊接",
            "电液比例控制",
            "表面渗氮强化",
            "轻量化设计",
            "工业互联网远程运维",
        ),
        products=("装载机", "挖掘机", "柴油机", "数控机床", "甘蔗收获机"),
        objects_en=("hydraulic excavators", "gearbox vibration", "welded joints", "diesel engines"),
        methods_en=(
            "topology optimisation",
            "deep-learning fault diagnosis",
            "laser cladding",
            "digital twin",
        ),
        equipment=("液压综合试验台", "疲劳试验机", "三坐标测量机"),
    ),
    "汽车": FieldVocab(
        methods=(
            "热成形钢",
            "铝镁合金压铸",
            "碳纤维复合材料",
            "多物理场仿真",
            "热泵空调",
            "域控制器",
            "激光雷达与视觉融合",
            "回弹补偿",
            "水性涂料工艺",
            "主动降噪",
        ),
        products=("微型电动车", "商用车", "乘用车", "汽车零部件", "专用车"),
        objects_en=(
            "battery electric vehicles",
            "body-in-white",
            "thermal management",
            "springback of stamped parts",
        ),
        methods_en=(
            "multiphysics simulation",
            "sensor fusion",
            "hot stamping",
            "heat-pump air conditioning",
        ),
        equipment=("整车转鼓试验台", "半消声室", "电机测试台架"),
    ),
    "新能源": FieldVocab(
        methods=(
            "固态电解质",
            "锰酸锂掺杂改性",
            "电池管理系统算法",
            "湿法冶金回收",
            "液冷热管理",
            "功率预测",
            "构网型储能变流器",
            "生物质气化",
        ),
        products=("储能电站", "动力电池", "锰系正极材料", "光伏电站", "充电桩"),
        objects_en=(
            "lithium-ion batteries",
            "sodium-ion batteries",
            "grid-scale storage",
            "spent battery recycling",
        ),
        methods_en=(
            "solid-state electrolytes",
            "cation doping",
            "state-of-health estimation",
            "hydrometallurgical leaching",
        ),
        equipment=("电池充放电测试系统", "加速量热仪", "手套箱"),
    ),
    "新材料": FieldVocab(
        methods=(
            "表面改性",
            "溶胶凝胶法",
            "超细粉碎分级",
            "等离子喷涂",
            "原位聚合",
            "放电等离子烧结",
            "高通量计算筛选",
        ),
        products=("重质碳酸钙", "电解二氧化锰", "稀土永磁", "ITO靶材", "改性塑料"),
        objects_en=(
            "calcium carbonate fillers",
            "manganese oxides",
            "ceramic coatings",
            "rare-earth magnets",
        ),
        methods_en=(
            "surface modification",
            "spark plasma sintering",
            "sol-gel synthesis",
            "high-throughput screening",
        ),
        equipment=("扫描电子显微镜", "X射线衍射仪", "激光粒度仪"),
    ),
    "新一代信息技术": FieldVocab(
        methods=(
            "深度学习",
            "知识图谱",
            "联邦学习",
            "大语言模型微调",
            "时序数据库",
            "目标检测算法",
            "低代码平台",
            "区块链溯源",
        ),
        products=("工业软件", "智能终端", "数据服务", "中国—东盟跨境服务平台"),
        objects_en=(
            "industrial defect detection",
            "low-resource machine translation",
            "edge computing",
            "knowledge graphs",
        ),
        methods_en=(
            "deep convolutional networks",
            "federated learning",
            "large language model fine-tuning",
            "graph neural networks",
        ),
        equipment=("GPU计算集群", "5G测试床", "工业网络安全靶场"),
    ),
    "高端装备制造": FieldVocab(
        methods=(
            "协作机器人",
            "视觉引导定位",
            "数字孪生虚拟调试",
            "模块化设计",
            "加速寿命试验",
            "伺服控制",
        ),
        products=("工业机器人", "自动化产线", "港口起重机", "轨道车辆部件"),
        objects_en=("industrial robots", "flexible assembly lines", "port cranes"),
        methods_en=("visual servoing", "virtual commissioning", "reliability growth testing"),
        equipment=("六轴机器人工作站", "激光跟踪仪", "环境试验箱"),
    ),
    "生物医药": FieldVocab(
        methods=(
            "超临界CO2萃取",
            "大孔树脂纯化",
            "HPLC指纹图谱",
            "代谢工程菌株改造",
            "微流控芯片",
            "网络药理学",
            "冻干工艺优化",
        ),
        products=("罗汉果甜苷", "中成药", "保健食品", "体外诊断试剂"),
        objects_en=(
            "mogrosides from Siraitia grosvenorii",
            "traditional Zhuang medicine",
            "probiotic strains",
            "point-of-care diagnostics",
        ),
        methods_en=(
            "supercritical CO2 extraction",
            "macroporous resin purification",
            "metabolic engineering",
            "network pharmacology",
        ),
        equipment=("高效液相色谱仪", "GMP中试车间", "发酵罐组"),
    ),
    "农业": FieldVocab(
        methods=(
            "分子标记辅助育种",
            "脱毒组培快繁",
            "水肥一体化",
            "冷链物流保鲜",
            "生物防治",
            "无人机植保",
            "物联网墒情监测",
        ),
        products=("甘蔗种苗", "沃柑", "六堡茶", "蚕丝", "富硒大米"),
        objects_en=(
            "sugarcane breeding",
            "citrus Huanglongbing",
            "post-harvest fruit",
            "sericulture",
        ),
        methods_en=(
            "marker-assisted selection",
            "biological control",
            "cold-chain preservation",
            "UAV spraying",
        ),
        equipment=("人工气候室", "分子育种平台", "农产品检测中心"),
    ),
    "林业": FieldVocab(
        methods=(
            "无醛胶黏剂",
            "木材热改性",
            "歧化松香催化",
            "近红外无损检测",
            "定向培育",
            "生物质精炼",
        ),
        products=("胶合板", "纤维板", "松香", "油茶籽油", "八角茴油"),
        objects_en=(
            "eucalyptus plantations",
            "formaldehyde-free plywood",
            "rosin derivatives",
            "camellia oil",
        ),
        methods_en=(
            "thermal modification",
            "bio-based adhesives",
            "catalytic disproportionation",
            "NIR non-destructive testing",
        ),
        equipment=("热压机", "人造板检测实验室", "林化中试线"),
    ),
    "节能环保": FieldVocab(
        methods=(
            "厌氧膜生物反应器",
            "高级氧化",
            "钝化修复",
            "SCR脱硝",
            "有机朗肯循环发电",
        ),
        products=("水处理设备", "土壤修复药剂", "余热发电机组"),
        objects_en=("industrial wastewater", "heavy-metal contaminated soil", "waste heat"),
        methods_en=(
            "anaerobic membrane bioreactors",
            "advanced oxidation",
            "organic Rankine cycles",
        ),
        equipment=("中试水处理装置", "ICP-MS", "烟气分析仪"),
    ),
}


@dataclass(frozen=True)
class Topic:
    """A coherent technical topic: its object, typical problems, methods, indicators, keywords."""

    obj: str
    problems: tuple[str, ...]
    methods: tuple[str, ...]
    indicators: tuple[Indicator, ...]
    keywords: tuple[str, ...]


def _topics(*specs: tuple[str, str, str, tuple[Indicator, ...], str]) -> tuple[Topic, ...]:
    return tuple(
        Topic(o, tuple(p.split("|")), tuple(m.split("|")), inds, tuple(k.split("|")))
        for o, p, m, inds, k in specs
    )


# Needs and capabilities are written about one topic at a time, so a need and a capability on
# the same topic share vocabulary the way real listings do.
TOPICS: dict[str, tuple[Topic, ...]] = {
    "制糖": _topics(
        (
            "甘蔗压榨",
            "压榨抽出率偏低|蔗渣含水率高、锅炉燃烧效率低|压榨机辊面磨损快",
            "渗浸压榨参数优化|压榨机辊面堆焊强化|机器视觉蔗料识别",
            (("压榨抽出率", "%", 94.0, 97.5), ("蔗渣水分", "%", 45.0, 52.0)),
            "甘蔗|压榨|抽出率|渗浸",
        ),
        (
            "蔗汁澄清",
            "澄清汁浊度波动大|硫熏法二氧化硫残留存在超标风险|石灰和磷酸用量大",
            "膜分离澄清|磷浮工艺|低硫澄清工艺|在线近红外检测",
            (("澄清汁浊度", "NTU", 20.0, 200.0), ("成品糖色值", "IU", 60.0, 150.0)),
            "澄清|硫熏|膜分离|色值",
        ),
        (
            "蒸发与煮糖",
            "蒸发罐结垢严重、停机清洗频繁|吨糖能耗偏高|煮糖操作依赖人工经验",
            "多效蒸发热力系统优化|复合酶法除垢|智能煮糖控制",
            (("吨糖耗标煤", "千克", 80.0, 150.0), ("糖分总回收率", "%", 85.0, 90.0)),
            "蒸发|煮糖|结垢|节能降耗",
        ),
        (
            "糖蜜与蔗渣综合利用",
            "糖蜜附加值低|蔗渣利用方式单一|酒精废醪液处理难",
            "高效酵母发酵|蔗渣纤维素酶解|废醪液浓缩焚烧",
            (("发酵酒精度", "%vol", 8.0, 12.0), ("蔗渣利用率", "%", 60.0, 95.0)),
            "糖蜜|蔗渣|发酵|综合利用",
        ),
        (
            "成品糖质量控制",
            "成品糖色值偏高|人工取样检测滞后、无法指导实时调整|批次质量波动大",
            "离子交换脱色|在线近红外检测|机器视觉品质识别",
            (("成品糖色值", "IU", 60.0, 150.0), ("糖分总回收率", "%", 85.0, 90.0)),
            "白砂糖|色值|在线检测|质量控制",
        ),
    ),
    "铝业": _topics(
        (
            "铝电解",
            "吨铝直流电耗偏高|电解槽寿命短|阳极效应频发",
            "低温低电压铝电解|大数据槽况诊断|新型阴极结构",
            (
                ("吨铝直流电耗", "kWh", 12000.0, 13200.0),
                ("电解槽寿命", "天", 1800.0, 3000.0),
                ("电流效率", "%", 92.0, 95.0),
            ),
            "铝电解|电耗|槽寿命|阳极效应",
        ),
        (
            "铝合金熔铸",
            "铸锭偏析和气孔缺陷|熔体含氢量高|夹杂物超标",
            "在线除气精炼|电磁搅拌|稀土微合金化",
            (("熔体氢含量", "mL/100gAl", 0.08, 0.2), ("抗拉强度", "MPa", 260.0, 420.0)),
            "熔铸|除气|铝合金|铸锭",
        ),
        (
            "铝型材挤压",
            "挤压模具寿命短|型材表面划伤和色差|挤压成材率低",
            "热挤压数值模拟|模具表面渗氮|微弧氧化",
            (("模具寿命", "次", 8000.0, 20000.0), ("挤压成材率", "%", 78.0, 90.0)),
            "挤压|模具|型材|表面处理",
        ),
        (
            "赤泥综合利用",
            "赤泥堆存占地大、碱性污染风险高|赤泥建材化利用率低",
            "赤泥脱碱|赤泥制备路基材料|赤泥选铁",
            (("赤泥碱含量", "%", 1.0, 6.0), ("赤泥利用率", "%", 5.0, 40.0)),
            "赤泥|脱碱|固废|建材",
        ),
        (
            "铝灰与再生铝",
            "铝灰渣属危险废物、处置成本高|再生铝中铁杂质含量高",
            "铝灰火法无害化|再生铝熔体除铁|废铝智能分选",
            (("铝回收率", "%", 85.0, 96.0), ("铁含量", "%", 0.1, 0.6)),
            "铝灰|再生铝|回收|危废",
        ),
    ),
    "机械": _topics(
        (
            "工程机械液压系统",
            "液压系统泄漏与温升过高|整机能耗偏高",
            "电液比例控制|负载敏感节能控制|液压油液在线监测",
            (("系统效率", "%", 60.0, 80.0), ("液压油温", "℃", 55.0, 90.0)),
            "液压|节能|工程机械|泄漏",
        ),
        (
            "焊接结构件",
            "关键结构件焊缝疲劳开裂|焊接变形大",
            "机器人自动焊接|焊后超声冲击处理|有限元拓扑优化",
            (("疲劳寿命", "万次", 50.0, 200.0), ("焊接一次合格率", "%", 92.0, 99.5)),
            "焊接|疲劳|结构件|机器人",
        ),
        (
            "齿轮箱与传动系统",
            "齿轮啮合噪声大|齿面点蚀早期失效",
            "齿形修形优化|表面渗氮强化|振动信号故障诊断",
            (("整机噪声", "dB(A)", 72.0, 85.0), ("故障诊断准确率", "%", 85.0, 97.0)),
            "齿轮|传动|噪声|故障诊断",
        ),
        (
            "内燃机",
            "燃油消耗偏高|排放难以满足国六标准",
            "高压共轨喷射标定|后处理系统匹配|燃烧过程仿真",
            (("燃油消耗率", "g/kWh", 190.0, 215.0), ("NOx排放", "g/kWh", 0.4, 3.5)),
            "内燃机|排放|燃油经济性|后处理",
        ),
        (
            "数控机床",
            "主轴热变形影响加工精度|缺乏故障预警手段",
            "热误差补偿|数字孪生|工业互联网远程运维",
            (("定位精度", "μm", 3.0, 10.0), ("故障诊断准确率", "%", 85.0, 97.0)),
            "数控机床|主轴|精度|运维",
        ),
        (
            "甘蔗收获机",
            "甘蔗收获含杂率高|宿根破头率高",
            "切割器仿形控制|排杂风机优化|机器视觉蔗料识别",
            (("含杂率", "%", 5.0, 12.0), ("宿根破头率", "%", 10.0, 30.0)),
            "甘蔗收获机|农机|含杂率|宿根",
        ),
    ),
    "汽车": _topics(
        (
            "车身轻量化",
            "车身重量偏大|高强钢冲压件回弹超差",
            "热成形钢|铝镁合金压铸|碳纤维复合材料|回弹补偿",
            (("整车减重", "%", 8.0, 20.0), ("冲压回弹量", "mm", 0.3, 1.5)),
            "轻量化|车身|冲压|热成形",
        ),
        (
            "新能源汽车电驱动系统",
            "电驱系统效率偏低|电机高速噪声大",
            "扁线电机|碳化硅功率器件|多物理场仿真",
            (("电驱系统效率", "%", 90.0, 95.0), ("功率密度", "kW/kg", 2.0, 5.0)),
            "电驱动|电机|新能源汽车|碳化硅",
        ),
        (
            "整车热管理",
            "冬季续航衰减明显|电池包温差大",
            "热泵空调|液冷热管理|整车热管理集成控制",
            (("冬季续航保持率", "%", 60.0, 80.0), ("电池包温差", "℃", 2.0, 8.0)),
            "热管理|热泵|续航|电池包",
        ),
        (
            "智能网联与自动驾驶",
            "雨雾天气环境感知失效|多传感器标定复杂",
            "激光雷达与视觉融合|域控制器|车路协同",
            (("目标识别准确率", "%", 90.0, 99.0), ("定位误差", "cm", 5.0, 30.0)),
            "智能网联|自动驾驶|传感器融合|车路协同",
        ),
        (
            "汽车涂装与NVH",
            "涂装VOCs排放高|车内噪声偏大",
            "水性涂料工艺|主动降噪|声学包优化",
            (("车内噪声", "dB(A)", 60.0, 70.0), ("VOCs排放", "g/m²", 20.0, 60.0)),
            "涂装|VOCs|NVH|降噪",
        ),
    ),
    "新能源": _topics(
        (
            "锂离子电池",
            "电池循环寿命不足|低温性能差|存在热失控风险",
            "锰酸锂掺杂改性|固态电解质|电池管理系统算法",
            (
                ("循环寿命", "次", 2000.0, 6000.0),
                ("能量密度", "Wh/kg", 140.0, 280.0),
                ("-20℃容量保持率", "%", 60.0, 85.0),
            ),
            "锂电池|正极材料|循环寿命|BMS",
        ),
        (
            "钠离子电池",
            "能量密度偏低|首次库伦效率低",
            "层状氧化物正极|硬碳负极|电解液配方优化",
            (("能量密度", "Wh/kg", 100.0, 160.0), ("首次库伦效率", "%", 80.0, 92.0)),
            "钠离子电池|硬碳|正极|储能",
        ),
        (
            "储能系统",
            "储能系统度电成本高|新能源并网功率波动大",
            "构网型储能变流器|功率预测|液冷热管理",
            (("系统循环效率", "%", 85.0, 92.0), ("度电成本", "元/kWh", 0.2, 0.6)),
            "储能|并网|变流器|调峰",
        ),
        (
            "动力电池回收",
            "退役电池拆解效率低|有价金属回收率低",
            "湿法冶金回收|自动化拆解|梯次利用检测",
            (("有价金属回收率", "%", 90.0, 98.0), ("拆解效率", "包/小时", 5.0, 30.0)),
            "电池回收|梯次利用|湿法冶金|锂",
        ),
        (
            "光伏与风电",
            "光伏组件衰减快|风机齿轮箱故障率高",
            "异质结电池工艺|振动监测与故障预警|功率预测",
            (("光伏转换效率", "%", 21.0, 25.0), ("机组可利用率", "%", 95.0, 99.0)),
            "光伏|风电|运维|发电效率",
        ),
    ),
    "新材料": _topics(
        (
            "碳酸钙粉体",
            "粉体团聚、分散性差|高端产品依赖进口",
            "表面改性|超细粉碎分级|碳化法合成纳米碳酸钙",
            (("粒径D50", "μm", 0.5, 5.0), ("白度", "%", 94.0, 98.0)),
            "碳酸钙|粉体|表面改性|填料",
        ),
        (
            "锰基材料",
            "材料批次稳定性差|制备能耗高",
            "电解工艺优化|掺杂改性|湿法除杂",
            (("纯度", "%", 99.5, 99.99), ("电解电流效率", "%", 70.0, 90.0)),
            "锰|电解二氧化锰|锰酸锂|电池材料",
        ),
        (
            "稀土功能材料",
            "稀土分离成本高|磁性能一致性差",
            "晶界扩散|萃取分离优化|高通量计算筛选",
            (("矫顽力", "kOe", 12.0, 30.0), ("稀土回收率", "%", 90.0, 99.0)),
            "稀土|永磁|萃取|功能材料",
        ),
        (
            "特种陶瓷与功能涂层",
            "耐腐蚀性能不足|界面结合强度低",
            "等离子喷涂|放电等离子烧结|溶胶凝胶法",
            (("弯曲强度", "MPa", 300.0, 900.0), ("涂层结合强度", "MPa", 20.0, 70.0)),
            "陶瓷|涂层|耐腐蚀|喷涂",
        ),
        (
            "高分子复合材料",
            "力学性能不足|阻燃性能差",
            "原位聚合|石墨烯改性|连续纤维增强",
            (("拉伸强度", "MPa", 40.0, 200.0), ("导热系数", "W/(m·K)", 1.0, 20.0)),
            "复合材料|高分子|改性塑料|石墨烯",
        ),
    ),
    "新一代信息技术": _topics(
        (
            "工业互联网平台",
            "生产数据孤岛严重|设备联网率低",
            "时序数据库|边缘计算网关|低代码平台",
            (("设备联网率", "%", 60.0, 95.0), ("平均响应时间", "ms", 50.0, 500.0)),
            "工业互联网|数据采集|边缘计算|数字化转型",
        ),
        (
            "工业视觉检测",
            "人工质检漏检率高|缺陷样本少、模型难以训练",
            "目标检测算法|小样本学习|深度学习",
            (("检测准确率", "%", 95.0, 99.5), ("检测速度", "件/分钟", 60.0, 600.0)),
            "机器视觉|缺陷检测|深度学习|质检",
        ),
        (
            "东盟多语种信息处理",
            "东盟多语种信息处理能力不足|专业术语翻译不准确",
            "大语言模型微调|知识图谱|神经机器翻译",
            (("翻译BLEU值", "分", 25.0, 45.0), ("问答准确率", "%", 80.0, 95.0)),
            "自然语言处理|机器翻译|东盟|大模型",
        ),
        (
            "北斗与物联网终端",
            "定位精度不足|终端功耗高",
            "北斗高精度定位|低功耗广域网|区块链溯源",
            (("定位误差", "cm", 2.0, 50.0), ("终端待机时间", "天", 30.0, 365.0)),
            "北斗|物联网|定位|溯源",
        ),
        (
            "数据中心与网络安全",
            "网络安全防护薄弱|数据中心能耗高",
            "零信任架构|液冷散热|联邦学习",
            (("数据中心PUE", "", 1.15, 1.6), ("并发用户数", "万", 1.0, 50.0)),
            "数据中心|网络安全|云计算|隐私计算",
        ),
    ),
    "高端装备制造": _topics(
        (
            "工业机器人",
            "核心部件依赖进口|重复定位精度不足",
            "精密减速器设计|伺服控制|视觉引导定位",
            (("重复定位精度", "mm", 0.02, 0.1), ("平均无故障时间", "小时", 2000.0, 8000.0)),
            "工业机器人|减速器|伺服|视觉引导",
        ),
        (
            "智能制造产线",
            "产线柔性不足、换型时间长|集成调试周期长",
            "数字孪生虚拟调试|模块化设计|协作机器人",
            (("产线节拍", "秒", 30.0, 90.0), ("换型时间", "分钟", 10.0, 120.0)),
            "智能制造|产线|数字孪生|柔性制造",
        ),
        (
            "海洋工程与港口装备",
            "海洋高盐雾环境腐蚀严重|设备可靠性不足",
            "防腐涂层体系|加速寿命试验|远程状态监测",
            (("防腐寿命", "年", 10.0, 25.0), ("平均无故障时间", "小时", 2000.0, 8000.0)),
            "海工装备|港口机械|防腐|可靠性",
        ),
        (
            "轨道交通装备",
            "关键部件疲劳寿命不足|运行振动噪声大",
            "轻量化设计|动力学仿真|在线状态监测",
            (("疲劳寿命", "万次", 100.0, 1000.0), ("车内噪声", "dB(A)", 60.0, 70.0)),
            "轨道交通|转向架|动力学|减振",
        ),
    ),
    "生物医药": _topics(
        (
            "罗汉果甜苷",
            "有效成分提取率低|纯化成本高",
            "大孔树脂纯化|膜分离浓缩|酶法转化",
            (("提取率", "%", 2.0, 10.0), ("产品纯度", "%", 90.0, 99.0)),
            "罗汉果|甜苷|天然甜味剂|提取",
        ),
        (
            "壮瑶药与中药材",
            "质量标准不完善|有效成分不明确",
            "HPLC指纹图谱|网络药理学|超临界CO2萃取",
            (("指标成分含量", "%", 0.5, 5.0), ("提取率", "%", 2.0, 10.0)),
            "壮药|瑶药|中药|质量标准",
        ),
        (
            "微生物发酵与益生菌",
            "发酵产率低|菌种稳定性差",
            "代谢工程菌株改造|发酵过程优化|冻干工艺优化",
            (("发酵效价", "g/L", 5.0, 50.0), ("活菌数", "亿CFU/g", 100.0, 1000.0)),
            "发酵|益生菌|菌种|生物制造",
        ),
        (
            "体外诊断试剂",
            "检测灵敏度不足|关键原料依赖进口",
            "微流控芯片|化学发光|重组抗原表达",
            (("检测灵敏度", "ng/mL", 0.1, 10.0), ("特异性", "%", 95.0, 99.5)),
            "诊断试剂|体外诊断|微流控|POCT",
        ),
        (
            "海洋生物活性物质",
            "活性物质含量低|产品同质化严重",
            "酶解制备活性肽|超临界CO2萃取|分子蒸馏",
            (("得率", "%", 5.0, 30.0), ("产品纯度", "%", 90.0, 99.0)),
            "海洋生物|活性肽|功能食品|北部湾",
        ),
    ),
    "农业": _topics(
        (
            "甘蔗良种繁育",
            "品种退化|宿根年限短",
            "分子标记辅助育种|脱毒组培快繁",
            (("单产", "吨/亩", 5.0, 8.0), ("蔗糖分", "%", 13.0, 16.0)),
            "甘蔗|育种|脱毒种苗|良种",
        ),
        (
            "柑橘病害防控",
            "柑橘黄龙病传播快|化肥农药使用过量",
            "生物防治|无人机植保|病原快速检测",
            (("发病率", "%", 1.0, 15.0), ("农药减量", "%", 20.0, 40.0)),
            "柑橘|黄龙病|植保|沃柑",
        ),
        (
            "水果采后保鲜",
            "采后损耗大|冷链成本高",
            "冷链物流保鲜|气调包装|可食性涂膜",
            (("采后损耗率", "%", 5.0, 25.0), ("货架期", "天", 7.0, 60.0)),
            "保鲜|冷链|火龙果|芒果",
        ),
        (
            "智慧农业",
            "机械化程度低|水肥管理粗放",
            "水肥一体化|物联网墒情监测|农业无人机",
            (("节水", "%", 20.0, 50.0), ("节肥", "%", 15.0, 40.0)),
            "智慧农业|水肥一体化|物联网|数字农业",
        ),
        (
            "茶叶与桑蚕",
            "产品品质参差不齐|加工机械化程度低",
            "清洁化加工生产线|发酵工艺控制|桑蚕良种选育",
            (("优质品率", "%", 60.0, 95.0), ("亩产提高", "%", 10.0, 30.0)),
            "六堡茶|茶叶加工|桑蚕|蚕丝",
        ),
    ),
    "林业": _topics(
        (
            "人造板",
            "人造板甲醛释放超标风险|静曲强度不足",
            "无醛胶黏剂|热压工艺优化|近红外无损检测",
            (("甲醛释放量", "mg/m³", 0.01, 0.124), ("静曲强度", "MPa", 12.0, 35.0)),
            "人造板|胶合板|无醛|纤维板",
        ),
        (
            "桉树人工林",
            "桉树林地力衰退|病虫害频发",
            "定向培育|测土配方施肥|混交林营造",
            (("林分蓄积量", "立方米/亩", 8.0, 15.0), ("年生长量提高", "%", 5.0, 20.0)),
            "桉树|人工林|地力维持|营林",
        ),
        (
            "松香与林化产品",
            "松脂深加工产品附加值低|松香易氧化变色",
            "歧化松香催化|松香改性|生物质精炼",
            (("松香得率", "%", 70.0, 85.0), ("产品软化点", "℃", 70.0, 130.0)),
            "松香|松节油|林化|精细化工",
        ),
        (
            "木材改性与家具",
            "木材尺寸稳定性差|速生材强度低",
            "木材热改性|浸渍强化|数控加工",
            (("吸水厚度膨胀率", "%", 2.0, 12.0), ("表面硬度提高", "%", 20.0, 80.0)),
            "木材改性|速生材|家具|热处理",
        ),
        (
            "油茶与八角",
            "油茶出油率低|八角深加工不足",
            "良种嫁接|冷榨工艺|分子蒸馏",
            (("出油率", "%", 20.0, 30.0), ("茴脑含量", "%", 80.0, 95.0)),
            "油茶|八角|林下经济|精油",
        ),
    ),
    "节能环保": _topics(
        (
            "工业废水处理",
            "废水COD浓度高、处理成本高|污泥产量大",
            "厌氧膜生物反应器|高级氧化|膜浓缩回用",
            (("COD去除率", "%", 85.0, 98.0), ("吨水处理成本", "元", 1.0, 8.0)),
            "废水|COD|膜处理|回用",
        ),
        (
            "重金属污染土壤修复",
            "修复周期长|存在二次污染风险",
            "钝化修复|植物修复|淋洗修复",
            (("有效态重金属降低", "%", 40.0, 90.0), ("修复成本", "元/立方米", 100.0, 800.0)),
            "土壤修复|重金属|钝化|矿区",
        ),
        (
            "烟气治理与余热回收",
            "排放存在不达标风险|余热浪费严重",
            "SCR脱硝|有机朗肯循环发电|余热锅炉优化",
            (("脱硝效率", "%", 80.0, 95.0), ("余热回收率", "%", 30.0, 60.0)),
            "脱硝|余热|烟气|节能",
        ),
        (
            "工业固废资源化",
            "固废堆存量大|资源化产品附加值低",
            "协同处置|高值化利用|固废制备建材",
            (("综合利用率", "%", 40.0, 90.0), ("处置成本降低", "%", 10.0, 40.0)),
            "固废|资源化|协同处置|循环经济",
        ),
    ),
}


# Plausible secondary fields of an enterprise in a given field.
RELATED: dict[str, tuple[str, ...]] = {
    "制糖": ("农业", "节能环保", "生物医药"),
    "铝业": ("新材料", "汽车", "节能环保"),
    "机械": ("高端装备制造", "汽车", "农业"),
    "汽车": ("机械", "新能源", "新材料"),
    "新能源": ("新材料", "汽车", "节能环保"),
    "新材料": ("铝业", "新能源", "林业"),
    "新一代信息技术": ("高端装备制造", "农业", "汽车"),
    "高端装备制造": ("机械", "新一代信息技术"),
    "生物医药": ("农业", "林业"),
    "农业": ("生物医药", "制糖", "林业"),
    "林业": ("新材料", "农业", "节能环保"),
    "节能环保": ("新能源", "制糖", "铝业"),
}
COOPERATION = ("技术转让", "联合开发", "委托开发", "技术入股", "共建研发平台", "技术咨询与服务")
CAP_KINDS = ("achievement", "patent", "paper", "team", "lab", "service")
CAP_KIND_WEIGHTS = (40, 22, 14, 9, 8, 7)

# --------------------------------------------------------------------------- academia

# name, kind, city (GX) or other city, specialities, parent index (or None)
ACADEMIA: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("邕江大学", "university", "南宁", ("制糖", "新材料", "新一代信息技术")),
    ("八桂科技大学", "university", "柳州", ("汽车", "机械", "高端装备制造")),
    ("漓江电子科技大学", "university", "桂林", ("新一代信息技术", "高端装备制造")),
    ("桂山理工大学", "university", "桂林", ("新材料", "铝业", "节能环保")),
    ("广西亚热带医科大学", "university", "南宁", ("生物医药",)),
    ("北部湾海洋大学", "university", "钦州", ("新能源", "高端装备制造", "节能环保")),
    ("桂西民族学院", "university", "百色", ("铝业", "农业")),
    ("左江师范学院", "university", "崇左", ("制糖", "农业")),
    ("红水河学院", "university", "河池", ("新材料", "节能环保")),
    ("西江学院", "university", "梧州", ("林业", "生物医药")),
    ("桂东学院", "university", "贺州", ("新材料", "林业")),
    ("广西南药大学", "university", "南宁", ("生物医药", "农业")),
    ("广西亚热带农业科学院", "institute", "南宁", ("农业", "制糖")),
    ("广西亚热带农业科学院甘蔗研究所", "institute", "南宁", ("制糖", "农业")),
    ("广西林产工业研究院", "institute", "南宁", ("林业",)),
    ("广西轻工糖业研究所", "institute", "南宁", ("制糖", "节能环保")),
    ("广西有色金属研究院", "institute", "南宁", ("铝业", "新材料")),
    ("广西机电工程研究院", "institute", "柳州", ("机械", "高端装备制造")),
    ("广西新能源研究院", "institute", "南宁", ("新能源",)),
    ("广西药用植物研究所", "institute", "南宁", ("生物医药", "农业")),
    ("广西智能信息研究院", "institute", "南宁", ("新一代信息技术",)),
    ("广西环境保护科学研究院", "institute", "南宁", ("节能环保",)),
    ("华南轻工大学", "university", "广州", ("制糖", "生物医药", "新材料")),
    ("中南冶金大学", "university", "长沙", ("铝业", "新材料", "新能源")),
    ("湘江理工大学", "university", "长沙", ("机械", "汽车")),
    ("长白汽车工程大学", "university", "长春", ("汽车", "机械")),
    ("江汉材料大学", "university", "武汉", ("新材料", "汽车")),
    ("京华科技大学", "university", "北京", ("新一代信息技术", "高端装备制造")),
    ("蜀都电子科技大学", "university", "成都", ("新一代信息技术",)),
    ("秦川交通大学", "university", "西安", ("机械", "新能源", "高端装备制造")),
    ("江南林业大学", "university", "南京", ("林业", "新材料")),
    ("东海农业大学", "university", "杭州", ("农业", "生物医药")),
    ("滇池理工大学", "university", "昆明", ("制糖", "铝业")),
    ("辽河工业大学", "university", "沈阳", ("铝业", "机械")),
    ("华东林产化学研究所", "institute", "南京", ("林业", "新材料")),
    ("中国热带作物研究院(虚构)", "institute", "广州", ("农业",)),
    ("深港先进技术研究院", "institute", "深圳", ("新一代信息技术", "新能源", "生物医药")),
    ("华中过程工程研究所", "institute", "武汉", ("节能环保", "新材料")),
    ("北方储能技术研究院", "institute", "哈尔滨", ("新能源",)),
    ("上海汽车轻量化研究院", "institute", "上海", ("汽车", "新材料")),
    ("中原药物研究所", "institute", "北京", ("生物医药",)),
    ("西部先进制造研究院", "institute", "成都", ("高端装备制造", "机械")),
)
# Institutes with a parent among ACADEMIA (child name -> parent name).
ACADEMIA_PARENTS = {"广西亚热带农业科学院甘蔗研究所": "广西亚热带农业科学院"}
# 校办企业 / institute companies: (name, parent academia name, fields)
SPINOFFS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("邕江大学科技发展有限公司", "邕江大学", ("制糖", "新材料")),
    ("八桂科大汽车技术服务有限公司", "八桂科技大学", ("汽车", "机械")),
    ("漓江电子科大智能科技有限公司", "漓江电子科技大学", ("新一代信息技术",)),
    ("广西亚热带农科种苗有限公司", "广西亚热带农业科学院", ("农业", "制糖")),
    ("广西有色金属研究院检测技术有限公司", "广西有色金属研究院", ("铝业", "新材料")),
    ("中南冶金大学资产经营有限公司", "中南冶金大学", ("铝业", "新材料")),
)


# --------------------------------------------------------------------------- records


@dataclass
class Org:
    external_id: str
    name: str
    kind: str
    province: str
    city: str
    fields: list[str]
    credit_code: str | None = None
    parent: str | None = None
    in_region: bool = True


@dataclass
class Dataset:
    organisations: list[Org] = field(default_factory=list)
    needs: list[dict[str, Any]] = field(default_factory=list)
    capabilities: list[dict[str, Any]] = field(default_factory=list)
    bounties: list[dict[str, Any]] = field(default_factory=list)
    bids: list[dict[str, Any]] = field(default_factory=list)
    commissioners: list[dict[str, Any]] = field(default_factory=list)
    scales: dict[str, str] = field(default_factory=dict)  # enterprise ext id -> 企业规模


def org_code(rng: random.Random) -> str:
    """A 9-character 组织机构代码 with its GB 11714 check character."""
    body = "".join(rng.choice("0123456789") for _ in range(8))
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    c = 11 - sum(int(d) * w for d, w in zip(body, weights, strict=True)) % 11
    return body + ("X" if c == 10 else "0" if c == 11 else str(c))


def credit_code(rng: random.Random, division: str, kind: str) -> str:
    """A valid 统一社会信用代码: 91 (enterprise) or 12 (public institution) + division + org code."""
    prefix = "12" if kind in ("university", "institute") else "91"
    first17 = prefix + division + org_code(rng)
    return first17 + credit_code_check_char(first17)


def _division(city: str) -> str:
    if city in GX_CITIES:
        return GX_CITIES[city]
    return OTHER_CITIES[city][1]


def _province(rng: random.Random, city: str) -> str:
    if city in GX_CITIES:
        return rng.choice(GX_PROVINCE_SPELLINGS)
    return OTHER_CITIES[city][0]


def _brands(rng: random.Random) -> Iterator[str]:
    """Two-character brand names, then three-character ones once those run out (scale runs)."""
    pool = [a + b for a in BRAND_FIRST for b in BRAND_SECOND if a != b]
    rng.shuffle(pool)
    yield from pool
    for third in BRAND_SECOND + BRAND_FIRST:
        for brand in pool:
            yield brand + third
    raise RuntimeError("brand names exhausted")


def _num(rng: random.Random, low: float, high: float) -> str:
    value = rng.uniform(low, high)
    if value >= 1000:
        return f"{round(value, -1):.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value < 1:
        return f"{value:.3f}"
    return f"{value:.1f}"


def _pick(rng: random.Random, items: tuple[str, ...], k: int) -> list[str]:
    return rng.sample(list(items), min(k, len(items)))


def generate_organisations(
    rng: random.Random, *, enterprise_scale: int = 1, extra_academia: int = 0
) -> list[Org]:
    """All organisations: groups, enterprises, academia, spin-offs, out-of-region firms.

    ``enterprise_scale`` multiplies the enterprises per field and ``extra_academia`` adds
    numbered copies of research organisations (for the scale generator).
    """
    orgs: list[Org] = []
    brands = _brands(rng)
    used_names: set[str] = set()
    used_codes: set[str] = set()

    def add(org: Org) -> Org:
        if org.name in used_names:
            org.name = org.name.replace("有限公司", f"{len(orgs)}号有限公司")
        used_names.add(org.name)
        if org.credit_code is None and rng.random() < 0.93:
            code = credit_code(rng, _division(org.city), org.kind)
            while code in used_codes:  # codes are unique; collisions matter at scale
                code = credit_code(rng, _division(org.city), org.kind)
            used_codes.add(code)
            org.credit_code = code
        orgs.append(org)
        return org

    e_no = 0

    def enterprise(field_: str, city: str | None = None, name: str | None = None, **kw: Any) -> Org:
        nonlocal e_no
        e_no += 1
        city = city or rng.choice(FIELD_CITIES[field_])
        if name is None:
            suffix = rng.choice(("有限公司", "有限公司", "股份有限公司", "有限责任公司"))
            name = f"{city}{next(brands)}{rng.choice(INDUSTRY_WORDS[field_])}{suffix}"
        fields = [field_] + (_pick(rng, RELATED[field_], 1) if rng.random() < 0.3 else [])
        return add(
            Org(f"ORG-E{e_no:04d}", name, "enterprise", _province(rng, city), city, fields, **kw)
        )

    # Corporate groups. The automotive one has three levels.
    group_specs = (
        ("汽车", "柳州", ("汽车", "机械", "汽车"), True),
        ("制糖", "南宁", ("制糖", "制糖", "林业"), False),
        ("铝业", "百色", ("铝业", "铝业", "新材料"), False),
        ("新能源", "钦州", ("新能源", "新材料"), False),
        ("机械", "玉林", ("机械", "机械", "高端装备制造"), False),
        ("生物医药", "梧州", ("生物医药", "农业"), False),
    )
    for scale_round in range(enterprise_scale):
        for field_, city, sub_fields, deep in group_specs:
            brand = next(brands)
            parent = enterprise(
                field_,
                city,
                f"广西{brand}{INDUSTRY_WORDS[field_][0]}集团有限公司"
                + (f"（{scale_round}）" if scale_round else ""),
            )
            children = []
            for sf in sub_fields:
                sub_city = rng.choice(FIELD_CITIES[sf])
                children.append(
                    enterprise(
                        sf,
                        sub_city,
                        f"{sub_city}{brand}{rng.choice(INDUSTRY_WORDS[sf])}有限公司",
                        parent=parent.external_id,
                    )
                )
            if deep:
                child = children[0]
                enterprise(
                    "汽车",
                    child.city,
                    f"{child.city}{brand}汽车冲压件有限公司",
                    parent=child.external_id,
                )
    # Stand-alone enterprises per field.
    for field_, n in FIELD_ENTERPRISES.items():
        for _ in range(n * enterprise_scale):
            enterprise(field_)
    # Out-of-region enterprises (eligible for tackle bounties, not for transfer ones).
    others = list(OTHER_CITIES)
    for i in range(12 * enterprise_scale):
        field_ = FIELDS[i % len(FIELDS)]
        city = others[i % len(others)]
        enterprise(
            field_,
            city,
            f"{city}{next(brands)}{rng.choice(INDUSTRY_WORDS[field_])}有限公司",
            in_region=False,
        )
    # Universities and institutes.
    by_name: dict[str, Org] = {}
    a_no = 0
    for copy in range(1 + extra_academia // max(len(ACADEMIA), 1)):
        for name, kind, city, specs in ACADEMIA:
            if copy and a_no >= len(ACADEMIA) + extra_academia:
                break
            a_no += 1
            prefix = "U" if kind == "university" else "I"
            full = name if not copy else f"{name}第{copy + 1}分院"
            org = add(
                Org(
                    f"ORG-{prefix}{a_no:03d}",
                    full,
                    kind,
                    _province(rng, city),
                    city,
                    list(specs),
                    in_region=city in GX_CITIES,
                )
            )
            by_name[full] = org
    for child, parent in ACADEMIA_PARENTS.items():
        by_name[child].parent = by_name[parent].external_id
    # Spin-offs (校办企业) and independent technology companies.
    c_no = 0
    for name, parent_name, fields in SPINOFFS:
        c_no += 1
        parent = by_name[parent_name]
        add(
            Org(
                f"ORG-C{c_no:03d}",
                name,
                "company",
                parent.province,
                parent.city,
                list(fields),
                parent=parent.external_id,
                in_region=parent.in_region,
            )
        )
    for field_ in ("新一代信息技术", "高端装备制造", "节能环保", "新能源"):
        c_no += 1
        city = rng.choice(FIELD_CITIES[field_])
        add(
            Org(
                f"ORG-C{c_no:03d}",
                f"{city}{next(brands)}{rng.choice(INDUSTRY_WORDS[field_])}科技有限公司",
                "company",
                _province(rng, city),
                city,
                [field_],
            )
        )
    return orgs


# --------------------------------------------------------------------------- texts


# Indicators where a smaller value is better (the others: larger is better).
LOWER_IS_BETTER = frozenset(
    "澄清汁浊度 成品糖色值 吨糖耗标煤 蔗渣水分 吨铝直流电耗 赤泥碱含量 整机噪声 定位精度 燃油消耗率 "
    "车内噪声 冲压回弹量 平均响应时间 粒径D50 采后损耗率 甲醛释放量 产线节拍 重复定位精度 熔体氢含量 "
    "铁含量 液压油温 NOx排放 含杂率 宿根破头率 电池包温差 VOCs排放 定位误差 度电成本 吨水处理成本 "
    "修复成本 发病率 换型时间 吸水厚度膨胀率 数据中心PUE 检测灵敏度".split()
)


def _indicator_sentence(rng: random.Random, ind: Indicator, improve: bool = True) -> str:
    name, unit, low, high = ind
    x, y = rng.uniform(low, high), rng.uniform(low, high)
    worse, better = (max(x, y), min(x, y)) if name in LOWER_IS_BETTER else (min(x, y), max(x, y))
    a, b = _num(rng, worse, worse), _num(rng, better, better)
    bound = "以内" if name in LOWER_IS_BETTER else "以上"
    if improve:
        return rng.choice(
            (
                f"{name}由目前的{a}{unit}改善到{b}{unit}左右",
                f"{name}达到{b}{unit}{bound}（现状约{a}{unit}）",
                f"{name}稳定控制在{b}{unit}{bound}",
            )
        )
    return f"{name}达到{b}{unit}{bound}" if rng.random() < 0.5 else f"{name}为{b}{unit}"


def _terms(
    rng: random.Random, topic: Topic, v: FieldVocab
) -> tuple[str, str, str, str, str, Indicator]:
    """Object, two problems, two methods and an indicator of one topic (the second method
    occasionally comes from elsewhere in the field, as real listings combine techniques)."""
    problem, problem2 = _pick(rng, topic.problems, 2)
    method = rng.choice(topic.methods)
    pool = [m for m in topic.methods if m != method]
    if rng.random() < 0.15 or not pool:
        pool = [m for m in v.methods if m != method]
    return topic.obj, problem, problem2, method, rng.choice(pool), rng.choice(topic.indicators)


def need_text(rng: random.Random, org: Org, field_: str) -> tuple[str, str, list[str]]:
    """A need's title, description (40–600 chars) and keywords, in the enterprise's voice."""
    v = VOCAB[field_]
    topic = rng.choice(TOPICS[field_])
    obj, problem, problem2, method, method2, ind = _terms(rng, topic, v)
    title = rng.choice(
        (
            f"{obj}关键技术攻关",
            f"{obj}工艺优化与{rng.choice(('降本增效', '提质增效', '节能降耗', '智能化改造'))}",
            f"基于{method}的{obj}技术需求",
            f"解决{obj}中{problem}的问题",
            f"{obj}{rng.choice(('技术升级', '国产化替代', '数字化改造', '质量提升'))}",
        )
    )
    product = rng.choice(v.products)
    parts = []
    if rng.random() < 0.8:
        parts.append(
            rng.choice(
                (
                    f"我公司位于{org.city}，主要从事{product}的生产，年产值约{rng.randint(1, 60)}亿元。",
                    f"本企业是{org.city}{field_}行业的骨干企业，拥有{rng.randint(2, 12)}条{product}生产线。",
                    f"公司主营{product}，近年来随着订单增长，{obj}环节逐渐成为瓶颈。",
                )
            )
        )
    parts.append(
        rng.choice(
            (
                f"目前{obj}环节存在{problem}、{problem2}等问题，",
                f"现有工艺{problem}，同时{problem2}，",
                f"生产中发现{problem}，",
            )
        )
        + rng.choice(
            (
                f"希望通过{method}或{method2}等技术手段加以解决，",
                f"拟引进{method}相关技术，",
                f"寻求高校院所在{method}方面的合作，",
            )
        )
        + f"使{_indicator_sentence(rng, ind)}。"
    )
    if rng.random() < 0.6:
        ind2 = rng.choice([i for i in topic.indicators if i != ind] or list(topic.indicators))
        parts.append(
            f"同时要求{_indicator_sentence(rng, ind2, improve=False)}，并满足现有产线改造条件。"
        )
    if rng.random() < 0.6:
        parts.append(
            f"合作方式：{rng.choice(COOPERATION)}；项目周期{rng.randint(6, 36)}个月"
            + rng.choice(("。", "，可提供中试场地和生产数据。", "，企业配套研发人员参与。"))
        )
    if rng.random() < 0.35:
        parts.append(
            rng.choice(
                (
                    f"要求合作方具有{field_}领域相关研究基础和工程化经验。",
                    "成果需在企业现场完成验证，知识产权归属双方协商。",
                    f"优先考虑有{rng.choice(v.products)}行业应用案例的团队。",
                )
            )
        )
    desc = "".join(parts)
    if len(desc) < 40:
        desc += f"需求涉及{obj}与{method}，欢迎有意向的单位联系洽谈。"
    keywords = [obj, *_pick(rng, topic.keywords, rng.randint(2, 3))]
    return title, desc[:600], keywords


def capability_text(
    rng: random.Random, org: Org, field_: str, kind: str, english: bool = False
) -> tuple[str, str, list[str]]:
    """A capability's title, description and keywords for ``kind`` in the owner's voice."""
    v = VOCAB[field_]
    if english:
        obj, method = rng.choice(v.objects_en), rng.choice(v.methods_en)
        gain = rng.randint(8, 45)
        title = rng.choice(
            (
                f"{method.capitalize()} for improved {obj}",
                f"Study on {obj} using {method}",
                f"{'An' if method[0] in 'aeiou' else 'A'} {method}-based approach to {obj}: "
                "experimental and numerical analysis",
            )
        )
        abstract = (
            f"This paper investigates {obj} with {method}. "
            + rng.choice(
                (
                    f"Pilot-scale experiments were carried out over {rng.randint(3, 18)} months. ",
                    f"A dataset of {rng.randint(200, 5000)} samples was collected from industrial sites in Guangxi. ",
                    "A coupled model was established and validated against plant measurements. ",
                )
            )
            + f"Compared with conventional practice, the proposed approach improves the key performance indicator by {gain}% "
            + rng.choice(
                (
                    "while reducing energy consumption. ",
                    "with a lower operating cost. ",
                    "and shows good robustness under varying conditions. ",
                )
            )
            + rng.choice(
                (
                    "The results provide a basis for industrial application.",
                    "Implications for technology transfer to local enterprises are discussed.",
                    "Further work will address scale-up and long-term stability.",
                )
            )
        )
        return title, abstract, [obj, method]
    topic = rng.choice(TOPICS[field_])
    obj, problem, _problem2, method, method2, ind = _terms(rng, topic, v)
    gain = rng.randint(5, 40)
    if kind == "patent":
        title = f"一种{rng.choice(('基于', '采用', '结合'))}{method}的{obj}{rng.choice(('方法', '装置', '系统', '工艺'))}"
        desc = (
            f"本发明公开了一种{obj}的{method}方法，包括预处理、{method2}和在线监测等步骤。"
            f"与现有技术相比，能有效解决{problem}的问题，{_indicator_sentence(rng, ind, improve=False)}。"
        )
        if rng.random() < 0.5:
            desc += f"该专利已获授权（专利号ZL20{rng.randint(15, 25)}1{rng.randint(1000000, 9999999)}.X），可转让或许可。"
    elif kind == "paper":
        title = f"{method}对{obj}{ind[0]}的影响研究"
        desc = (
            f"以{obj}为研究对象，采用{method}与{method2}相结合的方法，系统考察了工艺参数对{ind[0]}的影响。"
            f"结果表明，优化条件下{_indicator_sentence(rng, ind, improve=False)}，较对照提高{gain}%。"
        )
    elif kind == "team":
        title = f"{org.name}{field_}{rng.choice(('创新团队', '科研团队', '工程技术团队'))}：{obj}"
        desc = (
            f"团队现有成员{rng.randint(8, 40)}人，其中正高级职称{rng.randint(2, 9)}人，"
            f"长期从事{obj}、{rng.choice(TOPICS[field_]).obj}方向研究，掌握{method}、{method2}等核心技术，"
            f"近五年承担国家和省部级项目{rng.randint(5, 30)}项，与{rng.randint(3, 20)}家企业开展过合作。"
        )
    elif kind == "lab":
        title = f"{rng.choice(('广西', org.city))}{obj}{rng.choice(('工程技术研究中心', '重点实验室', '中试平台', '公共技术服务平台'))}"
        eq = "、".join(_pick(rng, v.equipment, 2)) if v.equipment else "大型仪器设备"
        desc = (
            f"平台面积{rng.randint(500, 6000)}平方米，拥有{eq}等仪器设备{rng.randint(50, 400)}台套，"
            f"可开展{obj}的{method}研究与中试验证，对外提供开放共享服务。"
        )
    elif kind == "service":
        title = f"{obj}{rng.choice(('检测与分析', '技术咨询', '工艺诊断', '标准制定'))}服务"
        desc = (
            f"面向{field_}企业提供{obj}{rng.choice(('检测', '评估', '诊断'))}服务，"
            f"依托{method}技术，出具具有CMA资质的报告，周期{rng.randint(3, 30)}个工作日。"
        )
    else:  # achievement
        title = rng.choice(
            (
                f"{obj}{rng.choice(('关键技术', '成套技术', '集成技术'))}及产业化",
                f"基于{method}的{obj}{rng.choice(('系统', '技术', '装备'))}",
                f"{rng.choice(('高效', '低成本', '绿色', '智能'))}{obj}技术",
            )
        )
        desc = (
            f"本成果针对{obj}中{problem}的问题，采用{method}"
            + (f"和{method2}" if rng.random() < 0.6 else "")
            + f"，{rng.choice(('研制了成套工艺与装备', '形成了完整的技术方案', '开发了核心算法与配套系统', '完成了小试和中试验证'))}。经第三方测试，{_indicator_sentence(rng, ind, improve=False)}，"
            f"较传统工艺提高{gain}%。"
        )
        if rng.random() < 0.6:
            desc += (
                f"已获授权发明专利{rng.randint(1, 12)}项，在{rng.randint(1, 15)}家企业示范应用，"
            )
            desc += rng.choice(
                (
                    f"新增产值{rng.randint(500, 20000)}万元。",
                    "技术成熟度高，可直接进行产业化推广。",
                    "适合与区内企业开展中试放大合作。",
                )
            )
    if rng.random() < 0.3:
        desc += rng.choice(
            (
                f"可为{rng.choice(v.products)}生产企业提供技术支撑。",
                f"合作方式：{rng.choice(COOPERATION)}。",
                f"相关成果获{rng.choice(('广西科学技术进步奖', '省部级科技奖励', '行业协会科技奖'))}。",
            )
        )
    keywords = [*_pick(rng, topic.keywords, rng.randint(2, 3)), method]
    return title[:300], desc[:600], keywords


# --------------------------------------------------------------------------- data set


def _field_for(rng: random.Random, org: Org) -> str:
    own = [f for f in org.fields if f in VOCAB]
    if own and rng.random() < 0.85:
        return rng.choice(own)
    return rng.choice(FIELDS)


def iter_needs(
    rng: random.Random, enterprises: list[Org], n: int, start: int = 1
) -> Iterator[dict[str, Any]]:
    """``n`` needs of in-region enterprises (each gets at least one while n allows)."""
    for i in range(n):
        org = enterprises[i % len(enterprises)] if i < len(enterprises) else rng.choice(enterprises)
        field_ = _field_for(rng, org)
        title, desc, keywords = need_text(rng, org, field_)
        yield {
            "external_id": f"NEED-{start + i:05d}",
            "org": org.external_id,
            "title": title,
            "description": desc,
            "field": field_,
            "keywords": keywords,
            "budget": rng.choice((None, 20, 30, 50, 80, 100, 150, 200, 300, 500, 800)),
            "deadline": (BASE_DATE + timedelta(days=rng.randint(60, 720))).isoformat(),
            "confidential": rng.random() < 0.08,
            "status": "open" if rng.random() < 0.9 else rng.choice(("matched", "closed")),
        }


def iter_capabilities(
    rng: random.Random, owners: list[Org], n: int, start: int = 1, english_share: float = 0.1
) -> Iterator[dict[str, Any]]:
    """``n`` capabilities, clustered in each owner's fields; ``english_share`` are English
    paper abstracts."""
    for i in range(n):
        org = owners[i % len(owners)] if i < len(owners) else rng.choice(owners)
        field_ = _field_for(rng, org)
        english = rng.random() < english_share
        kind = "paper" if english else rng.choices(CAP_KINDS, CAP_KIND_WEIGHTS)[0]
        title, desc, keywords = capability_text(rng, org, field_, kind, english)
        yield {
            "external_id": f"CAP-{start + i:06d}",
            "org": org.external_id,
            "kind": kind,
            "title": title,
            "description": desc,
            "field": field_,
            "keywords": keywords,
            "trl": rng.randint(3, 9)
            if kind in ("achievement", "patent")
            else rng.choice((None, 2, 3, 4)),
            "year": rng.randint(2015, 2025),
            "status": "active" if rng.random() < 0.95 else "inactive",
        }


def _group_of(orgs_by_id: dict[str, Org], ext: str) -> set[str]:
    """The corporate group of ``ext``: its root ancestor and all descendants of that root."""
    root = ext
    while orgs_by_id[root].parent:
        root = orgs_by_id[root].parent  # type: ignore[assignment]
    members = {root}
    changed = True
    while changed:
        changed = False
        for o in orgs_by_id.values():
            if o.parent in members and o.external_id not in members:
                members.add(o.external_id)
                changed = True
    return members


def _proposal(rng: random.Random, field_: str, bounty_title: str, members: list[Org]) -> str:
    topics = TOPICS[field_]
    topic = next((t for t in topics if t.obj in bounty_title), None) or rng.choice(topics)
    method = rng.choice(topic.methods)
    ind = rng.choice(topic.indicators)
    text = f"针对「{bounty_title}」，我单位拟采用{method}技术路线"
    if members:
        text += "，联合" + "、".join(m.name for m in members) + "组成联合体"
    text += (
        f"，分{rng.choice(('两', '三', '四'))}个阶段实施：方案论证与小试、中试放大、现场应用验证。"
        f"预期{_indicator_sentence(rng, ind, improve=False)}，工期{rng.randint(8, 30)}个月。"
    )
    if rng.random() < 0.5:
        text += f"团队在{topic.obj}方面已有{rng.randint(3, 15)}年研究积累。"
    return text


def generate(
    seed: int = 7, *, n_needs: int = 330, n_capabilities: int = 660, n_bounties: int = 26
) -> Dataset:
    """The demo data set (deterministic for ``seed``)."""
    rng = random.Random(seed)
    ds = Dataset()
    ds.organisations = generate_organisations(rng)
    by_id = {o.external_id: o for o in ds.organisations}
    enterprises = [o for o in ds.organisations if o.kind == "enterprise" and o.in_region]
    academia = [o for o in ds.organisations if o.kind in ("university", "institute")]
    companies = [o for o in ds.organisations if o.kind == "company"]
    ds.needs = list(iter_needs(rng, enterprises, n_needs))
    # ~88 % of capabilities belong to academia, the rest to companies and enterprises.
    n_acad = int(n_capabilities * 0.88)
    ds.capabilities = list(iter_capabilities(rng, academia, n_acad))
    ds.capabilities += list(
        iter_capabilities(
            rng, companies + rng.sample(enterprises, 20), n_capabilities - n_acad, start=n_acad + 1
        )
    )
    ds.bounties, ds.bids = _bounties_and_bids(rng, ds, by_id, n_bounties)
    # Workflow data (rounds, scales, funding split, planted duplicates, commissioners) draws
    # from its own generator so that everything above stays byte-identical.
    add_workflow_data(random.Random(seed * 1000 + 13), ds, by_id)
    return ds


ROUNDS = ("2026年第一批", "2026年第二批")
SCALES = ("micro", "small", "small", "medium", "medium", "large")
SCALE_ZH = {"micro": "微型", "small": "小型", "medium": "中型", "large": "大型"}
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗梁宋郑谢韦蒙覃莫廖陆"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰涛明超秀兰霞平刚桂华文斌宇浩然志海"
TITLES = ("教授", "研究员", "副教授", "副研究员", "高级工程师", "正高级工程师")


def add_workflow_data(rng: random.Random, ds: Dataset, by_id: dict[str, Org]) -> None:
    """Collection rounds, enterprise scales, bid funding splits, two planted duplicate needs
    and the commissioners (科技专员) of the demo."""
    for i, n in enumerate(ds.needs):
        n["round"] = ROUNDS[0] if i < 200 else ROUNDS[1]
    for o in ds.organisations:
        if o.kind == "enterprise":
            ds.scales[o.external_id] = rng.choice(SCALES)
    for b in ds.bids:
        lead = by_id[b["respondent"]]
        share = (
            rng.choice((0.10, 0.15, 0.20, 0.25, 0.30, 0.40))
            if lead.kind in ("enterprise", "company")
            else rng.choice((0.5, 0.6, 0.7))
        )
        b["funding_academic"] = round(b["price"] * share, 2)
        b["funding_enterprise"] = round(b["price"] - b["funding_academic"], 2)
    # Planted duplicates: one need re-sent by its enterprise, one forwarded by a group member.
    ents_by_parent: dict[str, list[str]] = {}
    for o in ds.organisations:
        if o.kind == "enterprise" and o.in_region and o.parent:
            ents_by_parent.setdefault(o.parent, []).append(o.external_id)
    n_next = len(ds.needs) + 1
    first = dict(ds.needs[4])
    first.update(
        external_id=f"NEED-{n_next:05d}", description="（重复提交）" + first["description"],
        round=ROUNDS[1], status="open", confidential=False,
    )  # fmt: skip
    ds.needs.append(first)
    sister = next(
        (n, m) for n in ds.needs[:200] for m in ents_by_parent.get(by_id[n["org"]].parent or "", [])
        if m != n["org"] and not n["confidential"]
    )  # fmt: skip
    second = dict(sister[0])
    second.update(
        external_id=f"NEED-{n_next + 1:05d}", org=sister[1], round=ROUNDS[1], status="open",
        description=f"受集团委托，代{by_id[sister[0]['org']].name}报送：" + second["description"],
    )  # fmt: skip
    ds.needs.append(second)
    ds.commissioners = list(iter_commissioners(rng, ds, 120))


def iter_commissioners(rng: random.Random, ds: Dataset, n: int) -> Iterator[dict[str, Any]]:
    """``n`` commissioners employed by universities and institutes, profiles from their
    employer's capabilities (papers, patents) and past services to enterprises."""
    academia = [o for o in ds.organisations if o.kind in ("university", "institute")]
    caps_by_org: dict[str, list[dict[str, Any]]] = {}
    for c in ds.capabilities:
        caps_by_org.setdefault(c["org"], []).append(c)
    names = [o.name for o in ds.organisations if o.kind == "enterprise" and o.in_region]
    used: set[str] = set()
    for i in range(n):
        org = academia[i % len(academia)]
        caps = caps_by_org.get(org.external_id) or [rng.choice(ds.capabilities)]
        mine = rng.sample(caps, min(len(caps), rng.randint(2, 4)))
        name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.randint(1, 2)))
        while name in used:
            name = rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, 2))
        used.add(name)
        field_ = mine[0].get("field") or (org.fields[0] if org.fields else "")
        keywords = list(dict.fromkeys(k for c in mine for k in c.get("keywords", [])))[:5]
        papers = [c["title"] for c in mine if c.get("kind") in ("paper", "achievement", "team")]
        patents = [c["title"] for c in mine if c.get("kind") in ("patent", "lab", "service")]
        yield {
            "external_id": f"COM-{i + 1:04d}",
            "name": name,
            "employer": org.external_id,
            "title": rng.choice(TITLES),
            "field": field_,
            "expertise": f"长期从事{field_}领域{'、'.join(keywords[:3]) or '技术'}研究与成果转化",
            "keywords": keywords,
            "papers": papers,
            "patents": patents,
            "services": [
                f"为{rng.choice(names)}提供{rng.choice(keywords or [field_])}技术服务"
                for _ in range(rng.randint(0, 2))
            ],
            "load_limit": rng.choice((2, 3, 3, 4, 5)),
        }


def _bounties_and_bids(
    rng: random.Random, ds: Dataset, by_id: dict[str, Org], n_bounties: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    bounties: list[dict[str, Any]] = []
    bids: list[dict[str, Any]] = []
    group_roots = {o.parent for o in ds.organisations if o.parent}
    # Tackle: posted by in-region enterprises, preferably group members (conflicts to catch).
    group_needs = [n for n in ds.needs if by_id[n["org"]].parent or n["org"] in group_roots]
    other_needs = [n for n in ds.needs if n not in group_needs and not n["confidential"]]
    tackle_needs = rng.sample(group_needs, min(6, len(group_needs)))
    tackle_needs += rng.sample(other_needs, n_bounties // 2 - len(tackle_needs))
    research = [o for o in ds.organisations if o.kind in ("university", "institute", "company")]
    in_region_ents = [o for o in ds.organisations if o.kind == "enterprise" and o.in_region]
    out_region_ents = [o for o in ds.organisations if o.kind == "enterprise" and not o.in_region]
    bid_no = 0

    def bid(bounty: dict[str, Any], respondent: Org, members: list[Org], field_: str) -> None:
        nonlocal bid_no
        bid_no += 1
        budget = bounty["budget"] or 100
        submitted = datetime.combine(
            BASE_DATE + timedelta(days=rng.randint(1, 50)), datetime.min.time(), tzinfo=CST
        ) + timedelta(hours=rng.randint(9, 17), minutes=rng.randint(0, 59))
        bids.append(
            {
                "external_id": f"BID-{bid_no:04d}",
                "bounty": bounty["external_id"],
                "respondent": respondent.external_id,
                "members": [m.external_id for m in members],
                "price": round(budget * rng.uniform(0.7, 1.1), 1),
                "proposal": _proposal(rng, field_, bounty["title"], members),
                "submitted_at": submitted.isoformat(),
            }
        )

    for i, need in enumerate(tackle_needs, start=1):
        poster = by_id[need["org"]]
        budget = need["budget"] or rng.choice((100, 200, 300, 500))
        bounty = {
            "external_id": f"BTY-T{i:03d}",
            "kind": "tackle",
            "poster": poster.external_id,
            "need": need["external_id"],
            "capability": None,
            "title": f"揭榜挂帅：{need['title']}",
            "description": need["description"]
            + f"榜单金额{budget}万元，揭榜方需在{rng.randint(12, 36)}个月内完成攻关任务并通过验收。",
            "budget": budget,
            "deadline": (BASE_DATE + timedelta(days=rng.randint(90, 300))).isoformat(),
            "status": "open" if i % 5 else "awarded",
        }
        bounties.append(bounty)
        field_ = need["field"]
        fitting = [o for o in research if field_ in o.fields] or research
        for r in rng.sample(fitting, min(len(fitting), rng.randint(2, 4))):
            members = rng.sample(research, rng.randint(1, 2)) if rng.random() < 0.35 else []
            bid(bounty, r, [m for m in members if m is not r], field_)
        group = _group_of(by_id, poster.external_id) - {poster.external_id}
        if group:  # a bid from the poster's own group: must be excluded by the rules
            bid(bounty, by_id[sorted(group)[0]], [], field_)
    # Transfer: posted by research organisations (from anywhere) with an achievement.
    poster_caps = [
        c
        for c in ds.capabilities
        if c["kind"] in ("achievement", "patent")
        and by_id[c["org"]].kind in ("university", "institute")
    ]
    with_spinoff = {o.parent for o in ds.organisations if o.kind == "company" and o.parent}
    spin_caps = [c for c in poster_caps if c["org"] in with_spinoff]
    chosen = rng.sample(spin_caps, min(4, len(spin_caps)))
    chosen += rng.sample(
        [c for c in poster_caps if c not in chosen], n_bounties - n_bounties // 2 - len(chosen)
    )
    for i, cap in enumerate(chosen, start=1):
        poster = by_id[cap["org"]]
        price = rng.choice((50, 80, 120, 200, 300, 600))
        bounty = {
            "external_id": f"BTY-Z{i:03d}",
            "kind": "transfer",
            "poster": poster.external_id,
            "need": None,
            "capability": cap["external_id"],
            "title": f"成果转化：{cap['title']}",
            "description": cap["description"]
            + f"现面向区内企业征集承接方，转让或许可价格约{price}万元，可提供技术指导和人员培训。",
            "budget": price,
            "deadline": (BASE_DATE + timedelta(days=rng.randint(90, 300))).isoformat(),
            "status": "open",
        }
        bounties.append(bounty)
        field_ = cap["field"]
        fitting = [o for o in in_region_ents if field_ in o.fields] or in_region_ents
        for r in rng.sample(fitting, min(len(fitting), rng.randint(2, 4))):
            bid(bounty, r, [], field_)
        if rng.random() < 0.5:  # an out-of-region enterprise: not eligible for transfer
            bid(bounty, rng.choice(out_region_ents), [], field_)
        spin = [
            o for o in ds.organisations if o.parent == poster.external_id and o.kind == "company"
        ]
        if spin:  # the poster's own 校办企业
            bid(bounty, spin[0], [], field_)
    return bounties, bids


# --------------------------------------------------------------------------- writers

KIND_ZH = {
    "enterprise": "企业",
    "university": "高校",
    "institute": "科研院所",
    "company": "科技公司",
}
ORG_HEADERS = (
    "单位编号",
    "单位名称",
    "单位类型",
    "统一社会信用代码",
    "所在省份",
    "所在城市",
    "上级单位",
    "所属领域",
    "企业规模",
)
NEED_HEADERS = (
    "需求编号",
    "单位编号",
    "需求名称",
    "需求描述",
    "所属领域",
    "关键词",
    "预算(万元)",
    "截止日期",
    "是否保密",
    "状态",
    "征集批次",
)
BOUNTY_HEADERS = (
    "榜单编号",
    "榜单类型",
    "发榜单位编号",
    "关联需求编号",
    "关联成果编号",
    "榜单名称",
    "榜单描述",
    "榜单金额(万元)",
    "截止日期",
    "状态",
)
BID_KEYS = (
    "external_id", "bounty", "respondent", "members", "price", "proposal", "submitted_at",
    "funding_enterprise", "funding_academic",
)  # fmt: skip
COMMISSIONER_HEADERS = (
    "专员编号", "姓名", "工作单位编号", "职称", "所属领域", "研究方向", "关键词",
    "代表论文", "授权专利", "服务经历", "服务企业上限",
)  # fmt: skip


def org_rows(orgs: Iterable[Org], scales: dict[str, str] | None = None) -> Iterator[list[Any]]:
    for o in orgs:
        yield [
            o.external_id,
            o.name,
            KIND_ZH.get(o.kind, o.kind),
            o.credit_code or "",
            o.province,
            o.city,
            o.parent or "",
            "、".join(o.fields),
            SCALE_ZH.get((scales or {}).get(o.external_id, ""), ""),
        ]


def need_rows(needs: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    status_zh = {"open": "征集中", "matched": "已对接", "closed": "已关闭"}
    for n in needs:
        yield [
            n["external_id"],
            n["org"],
            n["title"],
            n["description"],
            n["field"],
            "，".join(n["keywords"]),
            "" if n["budget"] is None else n["budget"],
            n["deadline"],
            "是" if n["confidential"] else "否",
            status_zh[n["status"]],
            n.get("round", ""),
        ]


def bounty_rows(bounties: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    kind_zh = {"tackle": "技术攻关类", "transfer": "成果转化类"}
    status_zh = {"open": "征集中", "awarded": "已揭榜", "closed": "已关闭"}
    for b in bounties:
        yield [
            b["external_id"],
            kind_zh[b["kind"]],
            b["poster"],
            b["need"] or "",
            b["capability"] or "",
            b["title"],
            b["description"],
            b["budget"],
            b["deadline"],
            status_zh[b["status"]],
        ]


def bid_rows(bids: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    for b in bids:
        yield [*(b[k] for k in BID_KEYS[:3]), "|".join(b["members"]), *(b[k] for k in BID_KEYS[4:])]


def commissioner_rows(people: Iterable[dict[str, Any]]) -> Iterator[list[Any]]:
    for c in people:
        yield [
            c["external_id"], c["name"], c["employer"], c["title"], c["field"], c["expertise"],
            "，".join(c["keywords"]), "；".join(c["papers"]), "；".join(c["patents"]),
            "；".join(c["services"]), c["load_limit"],
        ]  # fmt: skip


def write_csv(path: Path, headers: Iterable[str], rows: Iterable[list[Any]], encoding: str) -> int:
    n = 0
    with path.open("w", encoding=encoding, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(list(headers))
        for row in rows:
            writer.writerow(row)
            n += 1
    return n


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    n = 0
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
            n += 1
    return n


def write_dataset(ds: Dataset, out: Path) -> dict[str, int]:
    """Write the five demo files into ``out``; returns rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    return {
        "organisations.csv": write_csv(
            out / "organisations.csv", ORG_HEADERS, org_rows(ds.organisations, ds.scales), "gb18030"
        ),
        "needs.csv": write_csv(out / "needs.csv", NEED_HEADERS, need_rows(ds.needs), "utf-8-sig"),
        "capabilities.jsonl": write_jsonl(out / "capabilities.jsonl", ds.capabilities),
        "bounties.csv": write_csv(
            out / "bounties.csv", BOUNTY_HEADERS, bounty_rows(ds.bounties), "utf-8"
        ),
        "bids.csv": write_csv(out / "bids.csv", BID_KEYS, bid_rows(ds.bids), "utf-8"),
        # In a sub-directory: the store importer reads only the files of data/demo itself.
        "commissioners/科技专员.csv": _write_commissioners(out, ds.commissioners),
    }


def _write_commissioners(out: Path, people: list[dict[str, Any]]) -> int:
    (out / "commissioners").mkdir(parents=True, exist_ok=True)
    return write_csv(
        out / "commissioners" / "科技专员.csv",
        COMMISSIONER_HEADERS,
        commissioner_rows(people),
        "utf-8-sig",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=REPO / "data" / "demo")
    args = parser.parse_args(argv)
    ds = generate(args.seed)
    counts = write_dataset(ds, args.out)
    kinds: dict[str, int] = {}
    for o in ds.organisations:
        key = f"{o.kind}{'' if o.in_region else '(区外)'}"
        kinds[key] = kinds.get(key, 0) + 1
    print(f"wrote {args.out}: {counts}; organisations by kind: {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
