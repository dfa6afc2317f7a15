<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22.0-Białowieża" styleCategories="AllStyleCategories" hasScaleBasedVisibilityFlag="0" minScale="1e+08" maxScale="0">
  <pipe>
    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <rasterTransparency/>
      <minMaxOrigin>
        <limits>None</limits>
        <extent>WholeRaster</extent>
        <statAccuracy>Estimated</statAccuracy>
        <cumulativeCutLower>0.02</cumulativeCutLower>
        <cumulativeCutUpper>0.98</cumulativeCutUpper>
        <stdDevFactor>2</stdDevFactor>
      </minMaxOrigin>
      <colorPalette>
        <paletteEntry value="1" color="#00007f" alpha="255" label="1 Canyons, deeply incised streams"/>
        <paletteEntry value="2" color="#c8c8ff" alpha="255" label="2 Midslope drainages, shallow valleys"/>
        <paletteEntry value="3" color="#00c8ff" alpha="255" label="3 Upland drainages, headwaters"/>
        <paletteEntry value="4" color="#7f7fff" alpha="255" label="4 U-shaped valleys"/>
        <paletteEntry value="5" color="#ffff80" alpha="255" label="5 Plains"/>
        <paletteEntry value="6" color="#80ff00" alpha="255" label="6 Open slopes"/>
        <paletteEntry value="7" color="#00ff00" alpha="255" label="7 Upper slopes, mesas"/>
        <paletteEntry value="8" color="#ffc87f" alpha="255" label="8 Local ridges, hills in valleys"/>
        <paletteEntry value="9" color="#ff7f00" alpha="255" label="9 Midslope ridges, small hills in plains"/>
        <paletteEntry value="10" color="#ff0000" alpha="255" label="10 Mountain tops, high ridges"/>
      </colorPalette>
      <colorramp type="randomcolors" name="[source]"/>
    </rasterrenderer>
    <brightnesscontrast brightness="0" contrast="0" gamma="1"/>
    <huesaturation saturation="0" colorizeOn="0" colorizeRed="255" colorizeGreen="128" colorizeBlue="128" colorizeStrength="100" grayscaleMode="0"/>
    <rasterresampler maxOversampling="2"/>
    <resamplingStage>resamplingFilter</resamplingStage>
  </pipe>
  <blendMode>0</blendMode>
</qgis>
