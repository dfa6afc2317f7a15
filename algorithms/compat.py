"""What differs between the QGIS versions the plugin runs on, chosen at run time in one place.

QGIS 3.22 to 3.44 run on Qt5; QGIS 4 on Qt6, which removed `QVariant.Type` (`QVariant.Int`, …).
QGIS 3.38 added `QgsField(name, QMetaType.Type)` and deprecated the `QVariant.Type` form, so
3.44 warns about it at every run; 3.22 knows only that form.
"""
from qgis.core import Qgis, QgsField, QgsProcessingAlgorithm
from qgis.PyQt.QtCore import QMetaType, QVariant

# QgsField accepts a QMetaType.Type from QGIS 3.38 on (33800).
FIELD_TAKES_METATYPE = Qgis.QGIS_VERSION_INT >= 33800

# Field kinds the plugin writes: (QMetaType.Type name, QVariant.Type name, for QGIS < 3.38).
_FIELD_TYPES = {
    "int": ("Int", "Int"),
    "int64": ("LongLong", "LongLong"),
    "double": ("Double", "Double"),
    "string": ("QString", "String"),
}


def new_field(name: str, kind: str, length: int = 0) -> QgsField:
    """A QgsField of `kind` ('int', 'int64', 'double' or 'string'), made the way this QGIS
    wants it (QMetaType on 3.38 and later, QVariant before: it is the only form 3.22 has)."""
    meta_name, variant_name = _FIELD_TYPES[kind]
    if FIELD_TAKES_METATYPE:
        return QgsField(name, getattr(QMetaType.Type, meta_name), len=length)
    # QGIS < 3.38 runs on Qt5, where QVariant.Type exists; looked up by name so that the
    # removed-in-Qt6 attribute appears nowhere in the code that QGIS 4 loads.
    return QgsField(name, getattr(QVariant, variant_name), len=length)


def parameter_as_strings(alg: QgsProcessingAlgorithm, parameters: dict, name: str,
                         context) -> list:
    """The field names of a field parameter: `parameterAsStrings` where QGIS has it (3.40 and
    3.44 do, and report `parameterAsFields` as deprecated), `parameterAsFields` on older QGIS
    (3.22 has only that)."""
    if hasattr(alg, "parameterAsStrings"):
        return alg.parameterAsStrings(parameters, name, context)
    return alg.parameterAsFields(parameters, name, context)
