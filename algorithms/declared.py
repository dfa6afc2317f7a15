"""Processing parameters, values and checks built from an algorithm's declaration
(core.params.AlgorithmSpec, core/declarations/): what the dialog shows and what qgis_process
takes is what the declaration says, and a value is refused with the same message as on the
command line (core.batch)."""
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingOutputNumber,
    QgsProcessingOutputString,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSink,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterMultipleLayers,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterRasterLayer,
    QgsProcessingParameterString,
    QgsProperty,
)

from ..core import params
from ..core.errors import DemError

# What an enumeration shows when its options are known only at run time and none exist (no
# bundled model installed).
NO_OPTION = "(none installed)"


def enum_options(param: params.Param) -> tuple[list[str], int]:
    """(the words the dialog shows for each option, the default's number)."""
    choices, default = param.options()
    names = [c.name for c in choices]
    shown = [c.shown for c in choices] or [NO_OPTION]
    return shown, names.index(default) if default in names else 0


def definition(param: params.Param, tr):
    """The Processing parameter of one declared parameter."""
    label, kind = tr(param.label), param.kind
    if kind == params.RASTER:
        made = QgsProcessingParameterRasterLayer(param.name, label, optional=param.optional)
    elif kind == params.RASTERS:
        made = QgsProcessingParameterMultipleLayers(param.name, label, QgsProcessing.TypeRaster,
                                                    optional=param.optional)
    elif kind == params.POINTS:
        made = QgsProcessingParameterFeatureSource(
            param.name, label, [QgsProcessing.TypeVectorPoint], optional=param.optional)
    elif kind == params.FIELD:
        made = QgsProcessingParameterField(
            param.name, label, parentLayerParameterName=param.parent,
            type=QgsProcessingParameterField.Numeric, optional=param.optional)
    elif kind in (params.INTEGER, params.NUMBER):
        number = (QgsProcessingParameterNumber.Integer if kind == params.INTEGER
                  else QgsProcessingParameterNumber.Double)
        bounds = {}
        if param.minimum is not None:
            bounds["minValue"] = param.minimum
        if param.maximum is not None:
            bounds["maxValue"] = param.maximum
        made = QgsProcessingParameterNumber(param.name, label, number, param.default,
                                            optional=param.optional, **bounds)
        if param.decimals is not None:
            made.setMetadata({"widget_wrapper": {"decimals": param.decimals}})
    elif kind == params.BOOLEAN:
        made = QgsProcessingParameterBoolean(param.name, label, param.default,
                                             optional=param.optional)
    elif kind == params.ENUM:
        shown, default = enum_options(param)
        made = QgsProcessingParameterEnum(param.name, label, options=shown,
                                          defaultValue=default, optional=param.optional)
    elif kind == params.FILE:
        made = QgsProcessingParameterFile(param.name, label, extension=param.extension,
                                          optional=param.optional)
    elif kind == params.STRING:
        made = QgsProcessingParameterString(param.name, label, defaultValue=param.default,
                                            optional=param.optional)
    else:
        raise ValueError(f"No Processing parameter for kind {kind!r} ({param.name})")
    if param.advanced:
        made.setFlags(made.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return made


def destination(output: params.Output, tr):
    """The Processing destination parameter of a declared output (None: a plain output)."""
    label, kind = tr(output.label), output.kind
    common = {"optional": output.optional, "createByDefault": output.create_by_default}
    if kind == params.RASTER_OUT:
        return QgsProcessingParameterRasterDestination(output.name, label, **common)
    if kind == params.TABLE_OUT:
        return QgsProcessingParameterFeatureSink(output.name, label, QgsProcessing.TypeVector,
                                                 **common)
    if kind == params.POINTS_OUT:
        return QgsProcessingParameterFeatureSink(output.name, label,
                                                 QgsProcessing.TypeVectorPoint, **common)
    if kind == params.HTML_OUT:
        return QgsProcessingParameterFileDestination(output.name, label,
                                                     tr("HTML files (*.html)"), **common)
    return None


def add_parameters(algorithm, spec: params.AlgorithmSpec) -> None:
    """Every declared parameter and output, in the dialog's order: the parameters, then the
    destinations, then the advanced parameters; plain outputs (numbers, text) last."""
    tr = algorithm.tr
    for param in spec.params:
        if not param.advanced:
            algorithm.addParameter(definition(param, tr))
    for output in spec.outputs:
        made = destination(output, tr)
        if made is not None:
            algorithm.addParameter(made)
    for param in spec.params:
        if param.advanced:
            algorithm.addParameter(definition(param, tr))
    for output in spec.outputs:
        if output.kind == params.NUMBER_OUT:
            algorithm.addOutput(QgsProcessingOutputNumber(output.name, tr(output.label)))
        elif output.kind == params.STRING_OUT:
            algorithm.addOutput(QgsProcessingOutputString(output.name, tr(output.label)))


def check(spec: params.AlgorithmSpec, parameters: dict) -> str:
    """The refusal of the declaration's checks for these raw parameter values ("" when they
    pass): options by number, as qgis_process and processing.run give them."""
    values = {}
    for param in spec.option_params:
        value = parameters.get(param.name)
        if isinstance(value, QgsProperty):
            return ""  # an expression in a model: known only when the model runs
        if value is not None:
            values[param.key] = value
    try:
        spec.validate(values, by_name=False)
    except DemError as err:
        return str(err)
    return ""


def values(algorithm, spec: params.AlgorithmSpec, parameters, context) -> dict:
    """The options' values by key (radius, shape, …), as the core and the large-area engine
    take them: numbers, booleans, options by name (None for no bundled model), files or None."""
    raw = {}
    for param in spec.option_params:
        name, kind = param.name, param.kind
        if kind in (params.INTEGER, params.NUMBER):
            raw[param.key] = algorithm.parameterAsDouble(parameters, name, context)
        elif kind == params.BOOLEAN:
            raw[param.key] = algorithm.parameterAsBoolean(parameters, name, context)
        elif kind == params.ENUM:
            choices, _ = param.options()
            index = algorithm.parameterAsEnum(parameters, name, context)
            raw[param.key] = choices[index].name if index < len(choices) else None
        elif kind == params.FILE:
            raw[param.key] = algorithm.parameterAsFile(parameters, name, context) or None
        else:
            raw[param.key] = algorithm.parameterAsString(parameters, name, context)
    try:
        return spec.validate(raw)
    except DemError as err:
        raise QgsProcessingException(str(err)) from err
