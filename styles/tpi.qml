<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0-Białowieża" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <pipe>
    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1" nodataColor="" classificationMin="-2.5" classificationMax="2.5">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0" minimumValue="-2.5" maximumValue="2.5" labelPrecision="2">
          <colorramp type="gradient" name="[source]">
            <Option type="Map">
              <Option type="QString" name="color1" value="33,102,172,255"/>
              <Option type="QString" name="color2" value="178,24,43,255"/>
              <Option type="QString" name="discrete" value="0"/>
              <Option type="QString" name="rampType" value="gradient"/>
              <Option type="QString" name="stops" value="0.3;103,169,207,255:0.4;209,229,240,255:0.5;247,247,247,255:0.6;253,219,199,255:0.7;239,138,98,255"/>
            </Option>
          </colorramp>
            <item value="-2.5" color="#2166ac" alpha="255" label="-2.5"/>
            <item value="-1.0" color="#67a9cf" alpha="255" label="-1"/>
            <item value="-0.5" color="#d1e5f0" alpha="255" label="-0.5"/>
            <item value="0.0" color="#f7f7f7" alpha="255" label="0"/>
            <item value="0.5" color="#fddbc7" alpha="255" label="0.5"/>
            <item value="1.0" color="#ef8a62" alpha="255" label="1"/>
            <item value="2.5" color="#b2182b" alpha="255" label="2.5"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
